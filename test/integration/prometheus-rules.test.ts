import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findBinary, RULES_FILE } from '../helpers/prometheus';

/** The alert rules (docker/prometheus/rules/lifelong.yml) through Debian's promtool 2.42. */
describe('alert rules: promtool check and unit tests (integration)', function () {
  this.timeout(30_000);
  const rulesText = fs.readFileSync(RULES_FILE, 'utf8');
  const testFile = path.join(path.dirname(RULES_FILE), 'lifelong.test.yml');
  const alerts = [...rulesText.matchAll(/^\s+- alert: (\S+)$/gm)].map((m) => m[1] as string);

  it('promtool check rules accepts the file', () => {
    const out = execFileSync(findBinary('promtool', 'prometheus'), ['check', 'rules', RULES_FILE], { encoding: 'utf8' });
    assert.match(out, new RegExp(`SUCCESS: ${alerts.length} rules found`));
  });

  it('every alert has a runbook line and a promtool test that fires it and one where it stays silent', () => {
    assert.ok(alerts.length >= 9, `the issue's nine alerts at least, got ${alerts.join(', ')}`);
    assert.equal((rulesText.match(/^\s+runbook: /gm) ?? []).length, alerts.length, 'one runbook annotation per alert');
    const tests = fs.readFileSync(testFile, 'utf8');
    for (const alert of alerts) {
      const cases = tests.split(/^  # /m).filter((c) => c.includes(`alertname: ${alert}\n`));
      assert.ok(cases.some((c) => c.includes('exp_alerts:')), `a test where ${alert} fires`);
      assert.ok(cases.some((c) => /- eval_time: \S+\n\s+alertname: \S+\n(?!\s+exp_alerts)/.test(c)), `a test where ${alert} stays silent`);
    }
  });

  it('promtool test rules: every alert fires on the series that should fire it, silent otherwise', () => {
    const out = execFileSync(findBinary('promtool', 'prometheus'), ['test', 'rules', testFile], { encoding: 'utf8', cwd: path.dirname(testFile) });
    assert.match(out, /SUCCESS/);
  });
});
