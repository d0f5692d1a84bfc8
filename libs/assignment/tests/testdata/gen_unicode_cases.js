// Produces growthbook_unicode_cases.json: GrowthBook's own hash() and inNamespace() on
// strings with accents, CJK, emoji (surrogate pairs) and invalid UTF-8, so the expected
// values come from the reference SDK, never from libs/assignment.
//
//   mkdir /tmp/gbref && cd /tmp/gbref && npm install @growthbook/growthbook@1.8.0
//   node gen_unicode_cases.js /tmp/gbref > growthbook_unicode_cases.json
//
// Invalid UTF-8 is decoded with the WHATWG TextDecoder (each maximal ill-formed subpart
// becomes U+FFFD), which is how a JavaScript server turns request bytes into a string.
const path = require("path");
const root = process.argv[2];
const pkg = path.join(root, "node_modules/@growthbook/growthbook");
const util = require(path.join(pkg, "dist/cjs/util.js"));
const version = require(path.join(pkg, "package.json")).version;

const decode = (hex) => new TextDecoder("utf-8").decode(Buffer.from(hex, "hex"));
const hex = (s) => Buffer.from(s, "utf8").toString("hex");

// Strings are given as UTF-8 hex so the data file is plain ASCII and exact.
const values = [
  "café", "Zürich", "naïve-ñ", "日本語", "😀", "user-🚀-42", "👩‍💻", "𝄞music", "ÀÉÎÕÜ",
];
const invalid = ["ff", "c3", "e282", "f09f98", "61c328", "eda080", "c0af", "f4908080", "80bf41"];
const seeds = ["", "exp-1", "é", "🎯seed"];

const hashes = [];
for (const seed of seeds) {
  for (const v of values) {
    for (const ver of [1, 2]) {
      hashes.push({ seed: hex(seed), value: hex(v), version: ver, hash: util.hash(seed, v, ver) });
    }
  }
  for (const h of invalid) {
    for (const ver of [1, 2]) {
      hashes.push({ seed: hex(seed), value: h, version: ver, hash: util.hash(seed, decode(h), ver) });
    }
  }
}
const namespaces = [];
for (const v of values) {
  for (const ns of [["layer-ü", 0, 0.5], ["layer-ü", 0.5, 1], ["🧪", 0.2, 0.7]]) {
    namespaces.push({ user: hex(v), layer: hex(ns[0]), start: ns[1], end: ns[2],
                      in: util.inNamespace(v, ns) });
  }
}
// One case per line keeps diffs readable.
const list = (rows) => "[\n" + rows.map((r) => "  " + JSON.stringify(r)).join(",\n") + "\n]";
process.stdout.write(`{
"source": ${JSON.stringify(`@growthbook/growthbook ${version} (npm), dist/cjs/util.js hash() and inNamespace()`)},
"generator": "libs/assignment/tests/testdata/gen_unicode_cases.js",
"strings": "UTF-8 bytes as lowercase hex",
"hash": ${list(hashes)},
"inNamespace": ${list(namespaces)}
}
`);
