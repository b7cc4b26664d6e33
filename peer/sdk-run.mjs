#!/usr/bin/env node
// Run one call of the official @bankr/sdk (0.1.0-alpha.8) and print one JSON line.
//
//   node peer/sdk-run.mjs '{"op":"promptAndWait","baseUrl":"http://127.0.0.1:8402",
//                           "privateKey":"0x...","prompt":"What is the price of ETH?"}'
//   echo '{"op":"getJobStatus",...}' | node peer/sdk-run.mjs
//
// The command format, the output and the exit codes are documented in peer/README.md.
// The SDK is loaded from `$MOCKBANKR_PEER_DIR/node_modules` (default: the `.peer/`
// beside this folder, filled by `make peer`), through `dist/client.js`: the package's
// `dist/index.js` imports "./client" without an extension, which plain Node ESM rejects.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const OPS = {
  prompt: { needs: ["prompt"], options: ["walletAddress", "xmtp"] },
  promptAndWait: {
    needs: ["prompt"],
    options: ["walletAddress", "xmtp", "interval", "maxAttempts", "timeout"],
  },
  getJobStatus: { needs: ["jobId"], options: [] },
  pollJob: { needs: ["jobId"], options: ["interval", "maxAttempts", "timeout"] },
  cancelJob: { needs: ["jobId"], options: [] },
  address: { needs: [], options: [] },
};
const COMMON = ["op", "baseUrl", "privateKey", "clientWalletAddress", "clientTimeout"];
const TYPES = {
  op: "string",
  baseUrl: "string",
  privateKey: "string",
  clientWalletAddress: "string",
  clientTimeout: "number",
  prompt: "string",
  walletAddress: "string",
  xmtp: "boolean",
  jobId: "string",
  interval: "number",
  maxAttempts: "number",
  timeout: "number",
};

class UsageError extends Error {
  name = "UsageError";
}

const started = Date.now();

function emit(record, code) {
  const line = JSON.stringify(
    { ...record, elapsedMs: Date.now() - started },
    (_key, value) => (typeof value === "bigint" ? value.toString() : value),
  );
  process.stdout.write(line + "\n", () => process.exit(code));
}

function describe(err) {
  const error = { name: err?.name ?? "Error", message: String(err?.message ?? err) };
  if (err?.cause !== undefined) {
    error.cause = String(err.cause?.message ?? err.cause);
  }
  return error;
}

async function readCommand() {
  const args = process.argv.slice(2);
  if (args.length > 1) {
    throw new UsageError("give one JSON command as the only argument, or on stdin");
  }
  let text = args[0];
  if (text === undefined) {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    text = Buffer.concat(chunks).toString("utf-8");
  }
  let command;
  try {
    command = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the command is not valid JSON: ${err.message}`);
  }
  if (command === null || typeof command !== "object" || Array.isArray(command)) {
    throw new UsageError("the command must be a JSON object");
  }
  return command;
}

function validate(command) {
  const spec = OPS[command.op];
  if (spec === undefined) {
    throw new UsageError(`"op" must be one of ${Object.keys(OPS).join(", ")}`);
  }
  const allowed = new Set([...COMMON, ...spec.needs, ...spec.options]);
  for (const key of Object.keys(command)) {
    if (!allowed.has(key)) {
      throw new UsageError(`unknown key "${key}" for op ${command.op}`);
    }
    if (typeof command[key] !== TYPES[key]) {
      throw new UsageError(`"${key}" must be a ${TYPES[key]}`);
    }
  }
  for (const key of ["baseUrl", "privateKey", ...spec.needs]) {
    if (command[key] === undefined) {
      throw new UsageError(`"${key}" is required for op ${command.op}`);
    }
  }
}

async function loadSdk() {
  const here = dirname(fileURLToPath(import.meta.url));
  const peerDir = resolve(process.env.MOCKBANKR_PEER_DIR || join(here, "..", ".peer"));
  const client = join(peerDir, "node_modules", "@bankr", "sdk", "dist", "client.js");
  if (!existsSync(client)) {
    throw new UsageError(`@bankr/sdk is not installed (no ${client}): run \`make peer\``);
  }
  const { BankrClient } = await import(pathToFileURL(client).href);
  return BankrClient;
}

function pick(command, keys) {
  const picked = {};
  for (const key of keys) {
    if (command[key] !== undefined) picked[key] = command[key];
  }
  return picked;
}

function makeClient(command, BankrClient) {
  const config = { baseUrl: command.baseUrl, privateKey: command.privateKey };
  if (command.clientWalletAddress !== undefined) {
    config.walletAddress = command.clientWalletAddress;
  }
  if (command.clientTimeout !== undefined) config.timeout = command.clientTimeout;
  return new BankrClient(config);
}

async function call(client, command) {
  const spec = OPS[command.op];
  const args = pick(command, [...spec.needs, ...spec.options]);
  switch (command.op) {
    case "prompt":
      return client.prompt(args);
    case "promptAndWait":
      return client.promptAndWait(args);
    case "getJobStatus":
      return client.getJobStatus(command.jobId);
    case "pollJob":
      return client.pollJob(args);
    case "cancelJob":
      return client.cancelJob(command.jobId);
    case "address":
      return client.getWalletAddress();
  }
}

async function main() {
  let command;
  let BankrClient;
  try {
    command = await readCommand();
    validate(command);
    BankrClient = await loadSdk();
  } catch (err) {
    emit({ ok: false, op: command?.op ?? null, error: describe(err) }, 2);
    return;
  }
  let wallet = null;
  try {
    const client = makeClient(command, BankrClient);
    wallet = client.getWalletAddress();
    const result = await call(client, command);
    emit({ ok: true, op: command.op, wallet, result }, 0);
  } catch (err) {
    emit({ ok: false, op: command.op, wallet, error: describe(err) }, 1);
  }
}

main();
