// A second module, imported by features.js: bundling follows relative imports.
export function helper() {
  throw new Error("helper failed on purpose");
}
