// UTF-8 text to bytes and back: QuickJS components have no TextEncoder/TextDecoder.
// Invalid input decodes to U+FFFD, as TextDecoder does.

export function encode(text) {
  if (typeof TextEncoder === "function") return new TextEncoder().encode(text);
  const out = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

export function decode(bytes) {
  if (typeof TextDecoder === "function") return new TextDecoder().decode(bytes);
  let text = "";
  const chunk = [];
  const flush = () => {
    text += String.fromCharCode.apply(null, chunk);
    chunk.length = 0;
  };
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    let c = 0xfffd;
    let n = 1;
    if (b < 0x80) c = b;
    else if (b >= 0xc2 && b < 0xe0) n = 2;
    else if (b >= 0xe0 && b < 0xf0) n = 3;
    else if (b >= 0xf0 && b < 0xf5) n = 4;
    if (n > 1) {
      let value = b & (0xff >> (n + 1));
      let ok = i + n <= bytes.length;
      for (let k = 1; ok && k < n; k++) {
        const next = bytes[i + k];
        ok = (next & 0xc0) === 0x80;
        value = (value << 6) | (next & 63);
      }
      const min = [0, 0, 0x80, 0x800, 0x10000][n];
      if (ok && value >= min && value <= 0x10ffff && !(value >= 0xd800 && value < 0xe000)) c = value;
      else n = 1;
    }
    if (c >= 0x10000) {
      c -= 0x10000;
      chunk.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
    } else {
      chunk.push(c);
    }
    if (chunk.length > 8000) flush();
    i += n;
  }
  flush();
  return text;
}
