import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, HELP_SWITCH, parseSettings, type Setting, usage } from '../src/platform/settings.ts';

const TABLE = [
  { key: 'model', flag: 'model', kind: 'string', arg: 'DIR', required: true, help: 'the model' },
  { group: 'tuning', key: 'lr', flag: 'lr', kind: 'number', arg: 'X', min: 0, aboveMin: true, max: 1, default: '1e-4', help: 'learning rate' },
  { key: 'methods', flag: 'methods', kind: 'list', arg: 'LIST', choices: ['a', 'b', 'c'], default: 'a,b,c', help: 'methods' },
  { key: 'curve', flag: 'curve', kind: 'counts', arg: 'LIST', min: 1, default: '1,2', help: 'curve' },
  { key: 'workers', flag: 'workers', kind: 'count', arg: 'N', min: 1, max: 64, default: '1', help: 'workers' },
  { key: 'transfer', flag: 'transfer', kind: 'switch', help: 'transfer' },
  HELP_SWITCH,
] as const satisfies readonly Setting[];
const USAGE = usage('usage: test', TABLE);

const refused = (argv: string[], message: RegExp) =>
  assert.throws(() => parseSettings(TABLE, argv, USAGE), (e: Error) => e instanceof ConfigError && message.test(e.message), argv.join(' '));

describe('settings tables', () => {
  it('parses each kind, applies the defaults and reports which settings were given', () => {
    const { values, given } = parseSettings(TABLE, ['--model', 'm', '--curve', '5, 10', '--transfer', '--methods', 'c,a'], USAGE);
    assert.deepEqual(values, { model: 'm', lr: 1e-4, methods: ['c', 'a'], curve: [5, 10], workers: 1, transfer: true, help: false });
    assert.deepEqual([...given].sort(), ['curve', 'methods', 'model', 'transfer']);
  });

  it('reads SUPSUP_* variables only when given the environment, and the flag wins', () => {
    const env = { SUPSUP_WORKERS: '4', SUPSUP_MODEL: 'from-env' };
    assert.equal(parseSettings(TABLE, ['--model', 'm'], USAGE).values.workers, 1);
    const { values } = parseSettings(TABLE, ['--workers', '2'], USAGE, env);
    assert.equal(values.model, 'from-env');
    assert.equal(values.workers, 2);
    refused(['--model', 'm', '--workers', 'x'], /^--workers: must be a whole number, got "x"$/);
    assert.throws(() => parseSettings(TABLE, [], USAGE, { SUPSUP_MODEL: 'm', SUPSUP_LR: '2' }), /: SUPSUP_LR: must be a decimal number greater than 0 and at most 1, got "2"$/);
  });

  it('words every refused value alike: where, the rule, what it got', () => {
    refused(['--model', 'm', '--lr', '0'], /^--lr: must be a decimal number greater than 0 and at most 1, got "0"$/);
    refused(['--model', 'm', '--lr', 'fast'], /^--lr: must be a decimal number like 0.125, got "fast"$/);
    refused(['--model', 'm', '--workers', '65'], /^--workers: must be at most 64, got "65"$/);
    refused(['--model', 'm', '--methods', 'a,d'], /^--methods: must be a comma-separated list of a, b, c, got "a,d"$/);
    refused(['--model', 'm', '--curve', '1,0'], /^--curve: must be a comma-separated list of whole numbers of at least 1, got "1,0"$/);
    refused(['--model', ''], /^--model: must not be empty, got ""$/);
  });

  it('ends a missing required setting or an unknown option with the usage', () => {
    refused([], /^--model DIR is required\n\nusage: test/);
    refused(['--model', 'm', '--bogus'], /Unknown option '--bogus'[^]*\n\nusage: test/);
  });

  it('prints the usage from the table: groups, placeholders, defaults', () => {
    assert.match(USAGE, /\n  --model DIR +the model\n/);
    assert.match(USAGE, /\n\ntuning:\n  --lr X +learning rate \[default 1e-4\]\n/);
    assert.match(USAGE, /\n  --transfer +transfer\n/);
    assert.doesNotMatch(USAGE, /SUPSUP_/);
    assert.match(usage('usage: test', TABLE, { env: true }), /--workers N +SUPSUP_WORKERS +workers \[default 1\]/);
  });
});
