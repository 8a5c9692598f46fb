/**
 * Drifting interests: a user's interest slots over time as a Poisson process of slot replacements, with its
 * own random stream, and the tastes in force at any moment.
 */
import { mulberry32, seedFor } from '../../random';
import { exponential, Rand } from './random';
import { Tastes } from './tastes';
import { newSlot, Slot, UserLatent } from './users';
import { Universe } from './world';

/**
 * Interest drift as a Poisson process of slot replacements with its own random stream, so a user's tastes
 * at time t do not depend on which days were generated or how many behaviours were drawn before.
 */
export class InterestProcess {
  private readonly events: { time: number; slot: number; value: Slot }[] = [];
  private readonly rand: Rand;
  private horizon: number;
  /** The slots after every event generated so far. */
  private readonly latest: Slot[];
  private cached: { applied: number; tastes: Tastes } | null = null;

  constructor(
    private readonly world: Universe,
    private readonly user: UserLatent,
    seed: number,
    u: number,
    origin: number,
    private readonly ratePerDay: number,
  ) {
    this.rand = mulberry32(seedFor(seed, `synthetic.drift.${u}`));
    this.horizon = origin;
    this.latest = user.slots.slice();
  }

  private extendTo(t: number): void {
    const rate = this.ratePerDay * this.latest.length;
    if (rate <= 0) return;
    while (this.horizon <= t) {
      this.horizon += (exponential(this.rand) / rate) * 86_400;
      const slot = Math.floor(this.rand() * this.latest.length);
      const value = newSlot(this.world, this.rand, this.user.genderIndex, this.latest[slot].cat);
      // The last purchase interest is only ever replaced by another, so there is always something to buy.
      if (!this.latest.some((s, k) => k !== slot && s.intent)) value.intent = true;
      this.latest[slot] = value;
      this.events.push({ time: this.horizon, slot, value });
    }
  }

  /** The tastes in force at time t. */
  at(t: number): Tastes {
    this.extendTo(t);
    let applied = 0;
    while (applied < this.events.length && this.events[applied].time <= t) applied++;
    if (this.cached && this.cached.applied === applied) return this.cached.tastes;
    const slots = this.user.slots.slice();
    for (let e = 0; e < applied; e++) slots[this.events[e].slot] = this.events[e].value;
    const tastes = new Tastes(this.world, this.user, slots);
    this.cached = { applied, tastes };
    return tastes;
  }
}
