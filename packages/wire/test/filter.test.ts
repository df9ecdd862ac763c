import { Ajv } from 'ajv';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { CountBody, CreateCollection, DeleteBody, Filter, filterMatches, parseDatetime, parseFilter, payloadValues, SearchBody } from '@adanns/wire';

const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, strict: false });

// the README's example filter
const README = {
  must: [{ key: 'lang', match: { value: 'en' } }, { key: 'price', range: { gte: 10, lt: 100 } }],
  should: [{ key: 'tags', match: { any: ['sale', 'new'] } }, { has_id: [1, 'two'] }],
  must_not: [{ is_empty: { key: 'meta.author' } }, { must: [{ key: 'stock', match: { except: [0] } }] }],
};

describe('the filter language on the wire', () => {
  it('parses what the documented schema accepts, and the bodies carry it', () => {
    expect(Value.Check(Filter, README)).toBe(true);
    expect(parseFilter(README)).toMatchObject({ kind: 'clause', must: [{ kind: 'match', path: ['lang'], values: ['en'], except: false }, { kind: 'range', gte: 10, lt: 100, datetime: false }] });
    expect(Value.Check(Filter, { must: [{ key: 'a', match: { valu: 1 } }] })).toBe(false);
    expect(() => parseFilter({ must: [{ key: 'a', match: { valu: 1 } }] })).toThrow(/give exactly one of value, any, except/);
    expect(ajv.validate(SearchBody, { vector: [1], k: 1, filter: README })).toBe(true);
    expect(ajv.validate(SearchBody, { vector: [1], k: 1, filter: [README] })).toBe(false);
    expect(ajv.validate(CountBody, {})).toBe(true);
    expect(ajv.validate(DeleteBody, { filter: README })).toBe(true);
    expect(ajv.validate(DeleteBody, { ids: [] })).toBe(false);
    expect(ajv.validate(CreateCollection, { dim: 4, payloadIndexes: { lang: 'keyword', 'meta.year': 'integer' } })).toBe(true);
    expect(ajv.validate(CreateCollection, { dim: 4, payloadIndexes: { lang: 'text' } })).toBe(false);
  });

  it('reads nested keys through arrays and date-times as UTC instants', () => {
    expect(payloadValues({ meta: [{ lang: 'it' }, { lang: ['en', 'fr'] }] }, ['meta', 'lang'])).toEqual(['it', 'en', 'fr']);
    expect(payloadValues({ meta: null }, ['meta', 'lang'])).toEqual([]);
    expect(parseDatetime('2026-01-01')).toBe(Date.UTC(2026, 0, 1));
    expect(parseDatetime('2026-01-01T10:00:00')).toBe(Date.UTC(2026, 0, 1, 10));
    expect(parseDatetime('2026-01-01T10:00:00+0130')).toBe(Date.UTC(2026, 0, 1, 8, 30));
    expect(parseDatetime('2026-01-01T10:00:00.5Z')).toBe(Date.UTC(2026, 0, 1, 10, 0, 0, 500));
    expect(parseDatetime('January 1')).toBeUndefined();
    expect(parseDatetime('2026-13-01')).toBeUndefined();
    const node = parseFilter({ must: [{ key: 'at', range: { gt: '2026-01-01' } }] });
    expect(filterMatches(node, 1, { at: '2026-01-01T00:00:01Z' })).toBe(true);
    expect(filterMatches(node, 1, { at: 1e15 })).toBe(false); // a number is not a date-time
  });
});
