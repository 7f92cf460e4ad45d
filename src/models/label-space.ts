import { InvariantError, ValidationError } from '../core/errors';
import type { Label } from '../core/types';

/**
 * Maps labels (any string) to output units in order of first appearance, up to a fixed capacity.
 * A head uses only its first `size` units, so a head "grows" as labels appear without its
 * variables changing shape mid-task (the approach of van de Ven & Tolias's code, which masks a
 * head to the active classes).
 */
export class LabelSpace {
  private readonly units = new Map<Label, number>();
  private readonly order: Label[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new InvariantError(`label capacity must be a positive integer, got ${capacity}`);
  }

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

  /** The unit of a label, adding it if new. Throws ValidationError when the head is full. */
  add(label: Label): number {
    const known = this.units.get(label);
    if (known !== undefined) return known;
    if (this.order.length >= this.capacity) {
      throw new ValidationError(
        `label "${label}" would be class ${this.order.length + 1} but the head has ${this.capacity} output units (model.outputUnits)`,
        'too-many-classes',
      );
    }
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

  toJSON(): { capacity: number; labels: Label[] } {
    return { capacity: this.capacity, labels: [...this.order] };
  }

  static fromJSON(json: { capacity: number; labels: readonly Label[] }): LabelSpace {
    const space = new LabelSpace(json.capacity);
    for (const label of json.labels) space.add(label);
    return space;
  }
}
