// The straightforward allocator MetalLB uses: walk the pool from its first address and
// take the first one not in use. O(n) per allocation once n addresses are taken. Only
// the search is modelled (IPv4, one range, no sharing): it is the part whose cost grows.
export class ReferenceAllocator {
  constructor(first, last) {
    this.first = first;
    this.last = last;
    this.used = new Set();
    this.byService = new Map();
  }
  allocate(key) {
    for (let v = this.first; v <= this.last; v++) {
      if (!this.used.has(v)) {
        this.used.add(v);
        this.byService.set(key, v);
        return v;
      }
    }
    return undefined;
  }
  release(key) {
    const v = this.byService.get(key);
    if (v === undefined) return false;
    this.used.delete(v);
    this.byService.delete(key);
    return true;
  }
}
