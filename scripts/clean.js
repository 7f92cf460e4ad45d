// Removes build output so that stale compiled files (deleted sources, renamed tests) never run.
const fs = require('node:fs');
for (const dir of process.argv.slice(2)) fs.rmSync(dir, { recursive: true, force: true });
