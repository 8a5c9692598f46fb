/** The benchmarks' command-line options: `--name value`. */

/** The value after `--name`, or undefined when the option is absent (or last, with no value). */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : undefined;
}

/** The value after `--name`, or `fallback`. */
export function stringArg(name: string, fallback: string): string {
  return option(name) ?? fallback;
}

/** The number after `--name`, or `fallback`. */
export function numberArg(name: string, fallback: number): number {
  const v = option(name);
  return v === undefined ? fallback : Number(v);
}
