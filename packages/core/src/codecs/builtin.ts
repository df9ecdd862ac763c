// The shipped list codecs; each file registers itself (registry.ts). A new codec is one file plus a line here.
import './flat.js';
import './f16.js';
import './sq8.js';
import './pq.js';
import './fastscan.js';
