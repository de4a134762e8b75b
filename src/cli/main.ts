#!/usr/bin/env node
// Entry point of the `jpki` binary. reflect-metadata must load before @peculiar/x509 (imported below).
import "reflect-metadata";
import { quietOnClosedPipe, processIo } from "./output.js";
import { run } from "./program.js";

quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);
const code = await run(process.argv.slice(2), processIo());
process.exitCode = code;
