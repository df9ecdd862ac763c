// The request and reply schemas live in @adanns/wire, shared with the store and
// the client (docs/ARCHITECTURE.md, "Wire types"); add new ones there.
export * from '@adanns/wire';
