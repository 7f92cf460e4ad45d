#!/usr/bin/env node
'use strict';
// The compiled CLI (npm install builds dist/ through the prepare script).
require('../dist/src/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
    // A failed shutdown can leave sockets open (a broker that stopped answering): do not hang on them.
    setTimeout(() => process.exit(code), 2000).unref();
  });
