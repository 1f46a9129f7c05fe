/**
 * The forms a secret can take on the wire: as it is, base64 and base64url (at each of the three
 * alignments it can sit at inside a longer encoded text), hex and percent-encoding in either case.
 * Matching every form as a plain byte string means no decoder runs on the traffic itself.
 */
export interface EncodedForm {
  encoding: 'raw' | 'base64' | 'base64url' | 'hex' | 'percent';
  bytes: Buffer;
}

/** Shorter forms would match ordinary text by chance. */
const MIN_FORM_BYTES = 8;

export function encodedForms(value: Buffer): EncodedForm[] {
  const forms: EncodedForm[] = [{ encoding: 'raw', bytes: value }];
  for (const text of base64Alignments(value)) {
    forms.push({ encoding: 'base64', bytes: Buffer.from(text, 'latin1') });
    const url = text.replace(/\+/g, '-').replace(/\//g, '_');
    if (url !== text) forms.push({ encoding: 'base64url', bytes: Buffer.from(url, 'latin1') });
  }
  const hex = value.toString('hex');
  forms.push({ encoding: 'hex', bytes: Buffer.from(hex, 'latin1') });
  forms.push({ encoding: 'hex', bytes: Buffer.from(hex.toUpperCase(), 'latin1') });
  const everyByte = hex.replace(/(..)/g, '%$1');
  forms.push({ encoding: 'percent', bytes: Buffer.from(everyByte, 'latin1') });
  forms.push({ encoding: 'percent', bytes: Buffer.from(everyByte.toUpperCase(), 'latin1') });
  const component = encodeURIComponent(value.toString('utf8'));
  forms.push({ encoding: 'percent', bytes: Buffer.from(component, 'latin1') });
  forms.push({ encoding: 'percent', bytes: Buffer.from(component.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())) });
  return dedupe(forms.filter((f) => f.bytes.length >= MIN_FORM_BYTES));
}

/**
 * Base64 of `value` preceded by 0, 1 or 2 other bytes, keeping only the characters its own bits decide:
 * whatever surrounds the secret in an encoded body, one of these three appears in it.
 */
export function base64Alignments(value: Buffer): string[] {
  const texts: string[] = [];
  for (const offset of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(offset), value]).toString('base64');
    const skip = offset === 0 ? 0 : offset + 1;
    const end = Math.floor(((offset + value.length) * 8) / 6);
    if (end > skip) texts.push(encoded.slice(skip, end));
  }
  return texts;
}

function dedupe(forms: EncodedForm[]): EncodedForm[] {
  const seen = new Set<string>();
  return forms.filter((f) => {
    const key = f.bytes.toString('latin1');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
