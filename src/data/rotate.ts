/**
 * Rotation of a square grey image about its centre, for rotated-MNIST.
 */
import { InvariantError } from '../core/errors';

/** Source coordinates this close to a whole pixel are snapped to it, so that 90-degree turns are exact. */
const SNAP = 1e-9;

function snap(coordinate: number): number {
  const nearest = Math.round(coordinate);
  return Math.abs(coordinate - nearest) < SNAP ? nearest : coordinate;
}

/**
 * Rotates a row-major `size` x `size` image counter-clockwise (as displayed, rows going down) by
 * `angleDegrees` about its centre, like torchvision's `rotate` and scipy's `ndimage.rotate`.
 * Each output pixel samples the source by bilinear interpolation; source pixels outside the image
 * count as 0. Returns a new array unless `out` is given.
 */
export function rotateImage(
  image: Float32Array,
  angleDegrees: number,
  size = 28,
  out: Float32Array = new Float32Array(size * size),
): Float32Array {
  if (image.length !== size * size || out.length !== size * size) {
    throw new InvariantError(`rotateImage needs ${size}x${size} = ${size * size} pixels, got ${image.length} in, ${out.length} out`);
  }
  if (!Number.isFinite(angleDegrees)) throw new InvariantError(`rotation angle must be finite, got ${angleDegrees}`);
  if (out === image) throw new InvariantError('rotateImage cannot rotate in place');

  const radians = (angleDegrees * Math.PI) / 180;
  const cos = Math.cos(radians);
  const sin = Math.sin(radians);
  const centre = (size - 1) / 2;
  const pixel = (x: number, y: number): number =>
    x >= 0 && x < size && y >= 0 && y < size ? (image[y * size + x] as number) : 0;

  for (let y = 0; y < size; y++) {
    const dy = y - centre;
    for (let x = 0; x < size; x++) {
      const dx = x - centre;
      // Inverse mapping: the source point that the counter-clockwise rotation carries to (x, y).
      const sx = snap(centre + dx * cos - dy * sin);
      const sy = snap(centre + dx * sin + dy * cos);
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const top = pixel(x0, y0) * (1 - fx) + (fx > 0 ? pixel(x0 + 1, y0) * fx : 0);
      const bottom = fy > 0 ? pixel(x0, y0 + 1) * (1 - fx) + (fx > 0 ? pixel(x0 + 1, y0 + 1) * fx : 0) : 0;
      out[y * size + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}
