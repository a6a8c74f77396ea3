import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyValueSchema, parseSingleNumber } from '../../../src/cgroup/key-value.js';
import { isSameOrBelow, parentCgroup, parseProcCgroup } from '../../../src/cgroup/layout.js';
import { formatCpuList, parseCpuList } from '../../../src/common/cpu-list.js';
import { fixture } from '../helpers/fixture-tree.js';

describe('cpu lists', () => {
  it('parses ranges, singles, whitespace and duplicates like the kernel writes them', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList('1,2'), [1, 2]);
    assert.deepEqual(parseCpuList('3,1-2,2'), [1, 2, 3]);
    assert.deepEqual(parseCpuList(''), []);
    assert.deepEqual(parseCpuList('\n'), []);
    assert.deepEqual(parseCpuList('x,5-3,7'), [7]);
  });
  it('formats as %*pbl does', () => {
    assert.equal(formatCpuList([0, 1, 2, 3]), '0-3');
    assert.equal(formatCpuList([0]), '0');
    assert.equal(formatCpuList([0, 2, 3, 5]), '0,2-3,5');
    assert.equal(formatCpuList([]), '');
  });
});

describe('key/value files', () => {
  it('reads the wanted keys of a real v1 memory.stat and ignores the rest (incl. prefixes of them)', () => {
    const text = fixture('v1-captured/memory/memory.stat');
    const schema = new KeyValueSchema([
      'total_rss',
      'total_rss_huge',
      'cache',
      'hierarchical_memory_limit',
      'nope',
    ]);
    const out = new Float64Array(schema.size);
    const buf = Buffer.from(text, 'latin1');
    schema.parse(buf, buf.length, out);
    const value = (key: string) =>
      Number(/^(\S+) (\d+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${key} `))!)![2]);
    assert.equal(out[0], value('total_rss'));
    assert.equal(out[1], value('total_rss_huge'));
    assert.equal(out[2], value('cache'));
    assert.equal(out[3], 268435456);
    assert.ok(Number.isNaN(out[4]!));
  });
  it('maps several keys to one slot and marks non-numbers as Infinity', () => {
    const schema = new KeyValueSchema(['a', 'b', 'c'], [0, 0, 1]);
    const out = new Float64Array(schema.size);
    const buf = Buffer.from('b 7\nc max\n');
    schema.parse(buf, buf.length, out);
    assert.deepEqual([...out], [7, Number.POSITIVE_INFINITY]);
  });
  it('reads single numbers and "max"', () => {
    const n = (s: string) => parseSingleNumber(Buffer.from(s), Buffer.byteLength(s));
    assert.equal(n('536870912\n'), 536870912);
    assert.equal(n('max\n'), Number.POSITIVE_INFINITY);
    assert.equal(n('-1\n'), -1);
    assert.ok(Number.isNaN(n('')));
  });
});

describe('/proc/<pid>/cgroup', () => {
  it('v1: per controller, co-mounted controllers, init.scope pruned', () => {
    const paths = parseProcCgroup(
      '12:pids:/ct/init.scope\n4:memory:/ct/a\n3:cpu,cpuacct:/ct\n2:cpuset:/\n1:name=systemd:/ct/init.scope\n0::/\n',
      1,
    );
    assert.equal(paths.pids, '/ct');
    assert.equal(paths.memory, '/ct/a');
    assert.equal(paths.cpu, '/ct');
    assert.equal(paths.cpuacct, '/ct');
    assert.equal(paths.cpuset, '/');
    assert.equal(paths.blkio, null);
  });
  it('v2: the unified line for every controller; paths outside our namespace are unusable', () => {
    assert.equal(parseProcCgroup('0::/kubepods/pod1/ctr\n', 2).memory, '/kubepods/pod1/ctr');
    assert.equal(parseProcCgroup('0::/init.scope\n', 2).cpu, '/');
    assert.equal(parseProcCgroup('0::/../../other\n', 2).memory, null);
  });
  it('ancestry helpers', () => {
    assert.ok(isSameOrBelow('/a/b', '/a'));
    assert.ok(isSameOrBelow('/a', '/a'));
    assert.ok(isSameOrBelow('/a', '/'));
    assert.ok(!isSameOrBelow('/ab', '/a'));
    assert.equal(parentCgroup('/a/b'), '/a');
    assert.equal(parentCgroup('/a'), '/');
    assert.equal(parentCgroup('/'), null);
  });
});
