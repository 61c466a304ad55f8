// Compiles one JSON Schema with ajv (strict mode, draft 2020-12) and validates documents
// with it: JSON files, or YAML files read as editors read them (YAML 1.2 core schema).
//
// Usage: node validate.mjs SCHEMA FILE...
// Prints "ok FILE" or "invalid FILE: ..." per file; exits 1 if any file is invalid, 2 if
// the schema does not compile or a file cannot be read.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse } from "yaml";

const [schemaFile, ...files] = process.argv.slice(2);
if (!schemaFile) {
  console.error("usage: node validate.mjs SCHEMA FILE...");
  process.exit(2);
}

let validate;
try {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  addFormats(ajv);
  validate = ajv.compile(JSON.parse(readFileSync(schemaFile, "utf8")));
} catch (err) {
  console.error(`schema ${schemaFile} does not compile: ${err.message}`);
  process.exit(2);
}
console.log(`schema compiled: ${schemaFile}`);

let invalid = 0;
for (const file of files) {
  let value;
  try {
    const text = readFileSync(file, "utf8");
    value = file.endsWith(".json") ? JSON.parse(text) : parse(text);
  } catch (err) {
    console.error(`cannot read ${file}: ${err.message}`);
    process.exit(2);
  }
  if (validate(value)) {
    console.log(`ok ${file}`);
  } else {
    invalid++;
    const problems = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
    console.log(`invalid ${file}: ${problems.join("; ")}`);
  }
}
process.exit(invalid > 0 ? 1 : 0);
