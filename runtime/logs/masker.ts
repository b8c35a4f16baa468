// Replaces known secret values with **** in text that is about to be stored or streamed.
// Values shorter than MIN_SECRET are left alone: masking "1" or "on" everywhere would make
// logs unreadable and protect nothing.

export const MIN_SECRET = 4;
export const MASK = '****';

export interface Masker {
  mask(text: string): string;
  /** for a stream cut into arbitrary chunks: holds back a tail that may be the start of a secret */
  stream(): { push(chunk: string): string; end(): string };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function createMasker(values: string[]): Masker {
  const secrets = [...new Set(values.filter((v) => v.length >= MIN_SECRET))].sort((a, b) => b.length - a.length);
  if (!secrets.length) return { mask: (t) => t, stream: () => ({ push: (c) => c, end: () => '' }) };
  const re = new RegExp(secrets.map(escape).join('|'), 'g');
  const mask = (text: string) => text.replace(re, MASK);
  const longest = secrets[0]!.length;
  return {
    mask,
    stream() {
      let carry = '';
      return {
        push(chunk) {
          const text = mask(carry + chunk);
          // keep back the longest suffix that is a proper prefix of some secret
          let keep = 0;
          for (let n = Math.min(longest - 1, text.length); n > 0; n--) {
            const tail = text.slice(-n);
            if (secrets.some((s) => s.startsWith(tail))) {
              keep = n;
              break;
            }
          }
          carry = keep ? text.slice(-keep) : '';
          return keep ? text.slice(0, -keep) : text;
        },
        end() {
          const rest = carry;
          carry = '';
          return rest;
        },
      };
    },
  };
}
