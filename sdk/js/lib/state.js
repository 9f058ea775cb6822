// What the SDK keeps per VU between calls: the current `group` (a tag on requests).
export const state = { group: "" };
