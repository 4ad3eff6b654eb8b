// Encodes an authenticate(...) call as a Java HessianProxyFactory client
// sends it (Hessian 2: "H" 2 0, 'C', method, argument count, arguments),
// each value serialized by hessian.js, and decodes a reply read from a
// file with hessian.js. Usage:
//   node call.js encode ARG... > call.bin      (an argument "null" is null)
//   node call.js decode reply.bin              (prints the JSON of the value or fault)
const hessian = require('hessian.js');
const fs = require('fs');
const [, , cmd, ...rest] = process.argv;
if (cmd === 'encode') {
  const enc = (v) => hessian.encode(v, '2.0');
  const parts = [Buffer.from([0x48, 2, 0, 0x43]), enc('authenticate'), enc(rest.length)];
  for (const a of rest) parts.push(enc(a === 'null' ? null : a));
  process.stdout.write(Buffer.concat(parts));
} else if (cmd === 'decode') {
  const b = fs.readFileSync(rest[0]);
  if (b[0] !== 0x48 || b[1] !== 2 || b[2] !== 0) throw new Error('no H 2 0 envelope');
  const kind = String.fromCharCode(b[3]);
  const value = hessian.decode(b.subarray(4), '2.0');
  process.stdout.write(JSON.stringify({ kind, value }));
} else {
  throw new Error('usage: call.js encode ARG... | decode FILE');
}
