// Per-list query groups (a counting sort of the probes) live with the list scans in @adanns/compute (lists.ts).
export { groupQueriesByList } from '@adanns/compute';
