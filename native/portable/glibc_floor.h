// Forced into every translation unit of a portable build (CMake option DUPN_PORTABLE). glibc 2.29 gave
// exp, log and pow new symbol versions (the same functions without SVID error handling); a binary linked
// against a newer glibc asks for those and then will not load on glibc 2.28, the floor of Node 20's own
// Linux binaries. Binding to the older versions keeps the results: both run the same code for finite
// arguments, and dupn never relies on errno from them.
#pragma once
#if defined(__GLIBC__) || defined(__linux__)
#if defined(__x86_64__)
__asm__(".symver exp,exp@GLIBC_2.2.5");
__asm__(".symver log,log@GLIBC_2.2.5");
__asm__(".symver pow,pow@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver exp,exp@GLIBC_2.17");
__asm__(".symver log,log@GLIBC_2.17");
__asm__(".symver pow,pow@GLIBC_2.17");
#endif
#endif
