// A Math.random of its own per VU. A QuickJS plan's interpreter is snapshotted at build
// time, PRNG state included, so every VU would draw the same numbers; this one is seeded
// on first use, at run time, from the VU's number and the clock (sfc32 generator).
import { vuId } from "./host.js";

let a = 0;
let b = 0;
let c = 0;
let d = 0;
let seeded = false;

function sfc32() {
  const t = (((a + b) | 0) + d) | 0;
  d = (d + 1) | 0;
  a = b ^ (b >>> 9);
  b = (c + (c << 3)) | 0;
  c = (c << 21) | (c >>> 11);
  c = (c + t) | 0;
  return (t >>> 0) / 4294967296;
}

export function random() {
  if (!seeded) {
    seeded = true;
    const now = Date.now();
    a = 0x9e3779b9;
    b = Math.imul(vuId(), 0x85ebca6b);
    c = now | 0;
    d = (now / 4294967296) | 0;
    for (let i = 0; i < 15; i++) sfc32();
  }
  return sfc32();
}

export function install() {
  Math.random = random;
}
