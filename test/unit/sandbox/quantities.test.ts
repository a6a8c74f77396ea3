import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatCpuList,
  parseCpuList,
  parseCpus,
  parseSize,
  QuantityError,
} from '../../../src/sandbox/quantities.js';

describe('parseSize', () => {
  const cases: [string, number][] = [
    ['268435456', 268435456],
    ['256M', 256 * 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['64k', 65536],
    ['64K', 65536],
    ['256MiB', 256 * 1024 ** 2],
    ['256mb', 256 * 1024 ** 2],
    ['2t', 2 * 1024 ** 4],
    ['100b', 100],
    ['1.5k', 1536],
    ['0.1k', 102],
  ];
  for (const [text, bytes] of cases) {
    it(`reads ${text} as ${bytes} bytes`, () => assert.equal(parseSize(text), bytes));
  }
  for (const bad of [
    '',
    'M',
    '256Q',
    '-1',
    '1,5G',
    '0',
    '0M',
    '256 M',
    '1e9',
    'G1',
    '256Mi',
    '99999999999T',
  ]) {
    it(`rejects '${bad}'`, () => assert.throws(() => parseSize(bad), QuantityError));
  }
});

describe('parseCpus', () => {
  it('turns a CPU count into a CFS quota per 100 ms period', () => {
    assert.deepEqual(parseCpus('1'), { quotaUs: 100_000, periodUs: 100_000 });
    assert.deepEqual(parseCpus('1.5'), { quotaUs: 150_000, periodUs: 100_000 });
    assert.deepEqual(parseCpus('0.25'), { quotaUs: 25_000, periodUs: 100_000 });
    assert.deepEqual(parseCpus('.5'), { quotaUs: 50_000, periodUs: 100_000 });
    assert.deepEqual(parseCpus('0.01'), { quotaUs: 1_000, periodUs: 100_000 });
  });
  for (const bad of ['', '0', '0.001', '-1', 'one', '1/2', '1.5.2', '1e2']) {
    it(`rejects '${bad}'`, () => assert.throws(() => parseCpus(bad), QuantityError));
  }
});

describe('parseCpuList', () => {
  it('reads single CPUs, ranges and mixes, sorted and unique', () => {
    assert.deepEqual(parseCpuList('0'), [0]);
    assert.deepEqual(parseCpuList('0,2-3'), [0, 2, 3]);
    assert.deepEqual(parseCpuList('3,0-1,1'), [0, 1, 3]);
    assert.deepEqual(parseCpuList(' 1 , 4-5 '), [1, 4, 5]);
  });
  for (const bad of ['', ',', '0,', 'a', '3-1', '1-', '-1', '0;1', '1.5']) {
    it(`rejects '${bad}'`, () => assert.throws(() => parseCpuList(bad), QuantityError));
  }
});

describe('formatCpuList', () => {
  it('writes the kernel canonical form', () => {
    assert.equal(formatCpuList([0]), '0');
    assert.equal(formatCpuList([0, 2, 3]), '0,2-3');
    assert.equal(formatCpuList([5, 0, 1, 2, 7, 8]), '0-2,5,7-8');
    assert.equal(formatCpuList(parseCpuList('0-3,8,10-11')), '0-3,8,10-11');
  });
});
