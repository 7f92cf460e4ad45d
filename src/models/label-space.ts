import { InvariantError } from '../core/errors';
import type { Label } from '../core/types';

/**
 * The label registry of one head: labels (any string; a producer's integer arrives as its string
 * form) mapped to output units in order of first sight. It has no capacity of its own: a head
 * whose layer has fewer units than its labels grows (MultiHeadMlp.growHead), and a hard cap
 * (model.maxClasses) is the training step's business (strategies/learning-helpers.ts assignUnits).
 * A head uses only its first `size` units, so a pre-sized head "grows" into its spare units as
 * labels appear without its variables changing shape (the approach of van de Ven & Tolias's
 * code, which masks a head to the active classes).
 */
export class LabelSpace {
  private readonly units = new Map<Label, number>();
  private readonly order: Label[] = [];

  get size(): number {
    return this.order.length;
  }

  get labels(): readonly Label[] {
    return this.order;
  }

  has(label: Label): boolean {
    return this.units.has(label);
  }

  /** The unit of a known label, or undefined. */
  unitOf(label: Label): number | undefined {
    return this.units.get(label);
  }

  /** The unit of a label, adding it if new. */
  add(label: Label): number {
    const known = this.units.get(label);
    if (known !== undefined) return known;
    this.units.set(label, this.order.length);
    this.order.push(label);
    return this.order.length - 1;
  }

  /** Forgets every label after the first `size`: a batch that was not learned gives back the units it took. */
  truncate(size: number): void {
    for (const label of this.order.splice(size)) this.units.delete(label);
  }

  labelOf(unit: number): Label {
    const label = this.order[unit];
    if (label === undefined) throw new InvariantError(`unit ${unit} has no label (head has ${this.order.length})`);
    return label;
  }

  toJSON(): { labels: Label[] } {
    return { labels: [...this.order] };
  }

  static fromJSON(json: { readonly labels: readonly Label[] }): LabelSpace {
    const space = new LabelSpace();
    for (const label of json.labels) space.add(label);
    return space;
  }
}
