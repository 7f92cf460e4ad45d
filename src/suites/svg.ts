/**
 * SVG text primitives for the bench plots: the canvas constants and string builders that
 * escape and round everything they write, so no coordinate is ever NaN.
 */

export const WIDTH = 900;
export const OUTER_PADDING = 12;
export const FONT_SIZE = 12;
/** Rough advance of one character in sans-serif at 1 px font size: sizes legends and titles. */
const CHAR_WIDTH_EM = 0.6;

export function svgDocument(width: number, height: number, body: readonly string[]): string {
  const w = num(width);
  const h = num(height);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="${FONT_SIZE}">`,
    `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

export function titleText(title: string): string {
  return text(WIDTH / 2, 24, title, { class: 'plot-title', 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 'bold' });
}

export function noDataText(y: number): string {
  return text(WIDTH / 2, y, 'no runs to plot', { 'text-anchor': 'middle', fill: '#666666' });
}

export function verticalLabel(x: number, y: number, label: string, fontSize = FONT_SIZE): string {
  return text(x, y, label, { 'text-anchor': 'middle', transform: `rotate(-90 ${num(x)} ${num(y)})`, 'font-size': fontSize });
}

export function text(x: number, y: number, content: string, extra: Record<string, string | number> = {}): string {
  return `<text${attrs({ x: num(x), y: num(y), ...extra })}>${esc(content)}</text>`;
}

export function line(x1: number, y1: number, x2: number, y2: number, stroke: string): string {
  return `<line${attrs({ x1: num(x1), y1: num(y1), x2: num(x2), y2: num(y2), stroke, 'stroke-width': 1 })}/>`;
}

export function attrs(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([name, value]) => ` ${name}="${esc(typeof value === 'number' ? num(value) : value)}"`)
    .join('');
}

/** Escapes text for XML content and attribute values; drops the control characters XML forbids. */
export function esc(value: string): string {
  return value
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A coordinate or value as short text; a non-finite number (callers avoid them) never reaches the SVG as NaN. */
export function num(value: number, decimals = 2): string {
  if (!Number.isFinite(value)) return '0';
  const scale = 10 ** decimals;
  const rounded = Math.round(value * scale) / scale;
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

export function textWidth(content: string, fontSize: number): number {
  return content.length * fontSize * CHAR_WIDTH_EM;
}
