// Compiles flagsync's schemas with ajv (strict mode, draft 2020-12) and validates YAML
// files with them, read by the `yaml` package as editors read them (YAML 1.2 core
// schema). Files named flagsync.yaml or flagsync.yml are checked against the settings
// schema, every other file against the flag schema.
//
// Usage: node check.mjs SCHEMA_DIR FILE...
// With FLAGSYNC_SCHEMA_PREFIX=split- the Split schemas (split-flag.schema.json,
// split-settings.schema.json) are used instead.
// Prints "ok FILE" or "invalid FILE: ..." per file; exits 1 if any file is invalid,
// 2 if a schema does not compile or a file cannot be read.
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse } from "yaml";

const [schemaDir, ...files] = process.argv.slice(2);
if (!schemaDir) {
  console.error("usage: node check.mjs SCHEMA_DIR FILE...");
  process.exit(2);
}

let validateFlag, validateSettings;
try {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  addFormats(ajv);
  const prefix = process.env.FLAGSYNC_SCHEMA_PREFIX || "";
  const load = (name) => JSON.parse(readFileSync(join(schemaDir, prefix + name), "utf8"));
  validateFlag = ajv.compile(load("flag.schema.json"));
  validateSettings = ajv.compile(load("settings.schema.json"));
} catch (err) {
  console.error(`schema does not compile: ${err.message}`);
  process.exit(2);
}
console.log("schemas compiled");

let invalid = 0;
for (const file of files) {
  let value;
  try {
    value = parse(readFileSync(file, "utf8"));
  } catch (err) {
    console.error(`cannot read ${file}: ${err.message}`);
    process.exit(2);
  }
  const name = basename(file);
  const validate = name === "flagsync.yaml" || name === "flagsync.yml" ? validateSettings : validateFlag;
  if (validate(value)) {
    console.log(`ok ${file}`);
  } else {
    invalid++;
    const problems = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
    console.log(`invalid ${file}: ${problems.join("; ")}`);
  }
}
process.exit(invalid > 0 ? 1 : 0);
