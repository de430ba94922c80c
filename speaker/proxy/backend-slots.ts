/**
 * Backends as a native frontend's connections and flows know them: a small number (an
 * index into this table) that the relay threads carry and report back, instead of an
 * object or closure per connection (issue 4: RSS per idle connection). A slot is held
 * while a connect attempt, connection or flow refers to it, and reused once nothing does
 * and its backend has left the pool (`inPool`), so the table stays as small as the set of
 * backends in use.
 */
export interface Slot {
  readonly id: string;
  /** Attempts, connections and flows referring to it. */
  refs: number;
  /** Why its connections are being cut (backendRemoved), for their end reports. */
  cutReason: string | undefined;
}

export class BackendSlots {
  readonly #slots: Slot[] = [];
  readonly #slotOf = new Map<string, number>();
  readonly #free: number[] = [];

  constructor(private readonly inPool: (id: string) => boolean) {}

  /** The slot of backend `id` (ip:port), one more reference held. */
  hold(id: string): number {
    let slot = this.#slotOf.get(id);
    if (slot === undefined) {
      slot = this.#free.pop() ?? this.#slots.length;
      this.#slots[slot] = { id, refs: 0, cutReason: undefined };
      this.#slotOf.set(id, slot);
    }
    this.#slots[slot]!.refs++;
    return slot;
  }

  /** One more reference to `slot`, which something already holds. */
  ref(slot: number): void {
    this.#slots[slot]!.refs++;
  }

  get(slot: number): Slot | undefined {
    return this.#slots[slot];
  }

  /** One reference given back; the slot is freed when none is left and its backend is gone. */
  unref(slot: number): void {
    const s = this.#slots[slot];
    if (!s) return;
    if (--s.refs === 0) { s.cutReason = undefined; this.release(slot); }
  }

  /** Frees `slot` if nothing refers to it and its backend left the pool (call after a pool update). */
  release(slot: number): void {
    const s = this.#slots[slot];
    if (!s || s.refs > 0 || this.inPool(s.id) || this.#slotOf.get(s.id) !== slot) return;
    this.#slotOf.delete(s.id);
    this.#free.push(slot);
  }

  /** Held slots whose backend left the pool (after an update), and frees the unheld ones. */
  orphans(): number[] {
    const out: number[] = [];
    for (let slot = 0; slot < this.#slots.length; slot++) {
      const s = this.#slots[slot]!;
      if (s.refs === 0 || this.inPool(s.id)) this.release(slot);
      else out.push(slot);
    }
    return out;
  }
}
