// Checks, in the browser, what the trust claims about a member's data and money: signed
// notes (c2sp.org/signed-note) with the pinned vkey, checkpoints, receipts
// (c2sp.org/tlog-proof), RFC 6962 inclusion proofs, the release contribution leaves and the
// Merkle sum trees of shares. Only WebCrypto (SHA-256, Ed25519); nothing is taken on trust.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(value) {
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return Uint8Array.from(value);
  if (typeof value === "string") return encoder.encode(value);
  throw new Error("not bytes");
}

export function concat(...parts) {
  const all = parts.map(bytes);
  const out = new Uint8Array(all.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of all) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

export function hex(data) {
  return Array.from(bytes(data), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error("not hex");
  return Uint8Array.from(text.match(/../g) || [], (pair) => parseInt(pair, 16));
}

export function base64(data) {
  let text = "";
  for (const byte of bytes(data)) text += String.fromCharCode(byte);
  return btoa(text);
}

export function fromBase64(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (char) => char.charCodeAt(0));
}

function equal(a, b) {
  a = bytes(a);
  b = bytes(b);
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

// --- signed notes -------------------------------------------------------------------------

// "<name>+<hex key hash>+<base64(0x01 || 32-byte Ed25519 key)>"
export async function parseVkey(text) {
  const first = text.indexOf("+");
  const second = text.indexOf("+", first + 1);
  if (first < 1 || second < 0) throw new Error("a vkey is name+hash+key");
  const name = text.slice(0, first);
  const hash = text.slice(first + 1, second);
  const key = fromBase64(text.slice(second + 1));
  if (key.length !== 33 || key[0] !== 1) throw new Error("not an Ed25519 vkey");
  const expected = (await sha256(name, "\n", key)).slice(0, 4);
  if (hex(expected) !== hash) throw new Error("the vkey's hash does not match its key");
  const publicKey = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, keyHash: expected, publicKey };
}

// Returns the note's text once a signature by `vkey` verifies over it.
export async function openNote(note, vkey) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Error("a note is text, a blank line, signatures");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  for (const line of lines) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match || match[1] !== vkey.name) continue;
    const signature = fromBase64(match[2]);
    if (signature.length !== 68 || !equal(signature.slice(0, 4), vkey.keyHash)) continue;
    const good = await crypto.subtle.verify({ name: "Ed25519" }, vkey.publicKey, signature.slice(4), encoder.encode(text));
    if (good) return text;
  }
  throw new Error("no valid signature by the trust's log key");
}

export async function openCheckpoint(note, vkey) {
  const text = await openNote(note, vkey);
  const [origin, size, root] = text.split("\n");
  if (origin !== vkey.name) throw new Error("the checkpoint is for another log");
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error("bad checkpoint size");
  return { origin, size: Number(size), root: fromBase64(root) };
}

// --- RFC 6962 -----------------------------------------------------------------------------

export async function leafHash(data) {
  return sha256(new Uint8Array([0]), data);
}

async function nodeHash(left, right) {
  return sha256(new Uint8Array([1]), left, right);
}

// RFC 9162 section 2.1.3.2.
export async function verifyInclusion(index, size, leaf, proof, root) {
  if (!(index < size)) throw new Error("index outside the tree");
  let fn = index;
  let sn = size - 1;
  let hash = leaf;
  for (const sibling of proof) {
    if (sn === 0) throw new Error("proof too long");
    if (fn % 2 === 1 || fn === sn) {
      hash = await nodeHash(sibling, hash);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      hash = await nodeHash(hash, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(hash, root)) throw new Error("the inclusion proof does not lead to the root");
}

// --- receipts and log entries ----------------------------------------------------------------

export function parseEntry(data) {
  const text = decoder.decode(data);
  const lines = text.replace(/\n$/, "").split("\n");
  const kind = lines.shift().replace(/^datatrust\/v1 /, "");
  const fields = {};
  for (const line of lines) {
    const at = line.indexOf(": ");
    fields[line.slice(0, at)] = line.slice(at + 2);
  }
  return { kind, fields };
}

// A c2sp.org/tlog-proof receipt whose extra line carries the entry; returns the entry.
export async function verifyReceipt(text, vkey) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Error("a receipt has a blank line before its checkpoint");
  const lines = text.slice(0, split).split("\n");
  if (lines.shift() !== "c2sp.org/tlog-proof@v1") throw new Error("not a tlog-proof receipt");
  let line = lines.shift();
  if (!line.startsWith("extra ")) throw new Error("the receipt does not carry its entry");
  const entry = fromBase64(line.slice(6));
  line = lines.shift();
  if (!/^index (0|[1-9][0-9]*)$/.test(line)) throw new Error("bad index line");
  const index = Number(line.slice(6));
  const proof = lines.map(fromBase64);
  const checkpoint = await openCheckpoint(text.slice(split + 2), vkey);
  await verifyInclusion(index, checkpoint.size, await leafHash(entry), proof, checkpoint.root);
  return { index, entry: parseEntry(entry), checkpoint };
}

// --- releases (where my data went) ---------------------------------------------------------

export async function verifyAuditEntry(entry, me, salt, vkey) {
  const commitment = hex(await sha256("datatrust release commitment v1\n", salt, me, entry.release_id));
  if (commitment !== entry.commitment) throw new Error("the contribution is not committed to your key");
  const leaf = await leafHash(`datatrust contribution v1\n${commitment}\n${entry.my_records}\n${entry.records_root}\n`);
  await verifyInclusion(entry.part_index, entry.parts, leaf, entry.proof.map(bytes), fromHex(entry.release_root));
  const release = await verifyReceipt(entry.release_receipt, vkey);
  const fields = release.entry.fields;
  if (release.entry.kind !== "release-published" || fields.release !== entry.release_id ||
      fields.root !== entry.release_root || fields.license !== entry.license_id) {
    throw new Error("the logged release does not match what the trust reported");
  }
  for (const use of entry.uses) {
    const logged = await verifyReceipt(use.receipt, vkey);
    const data = (logged.entry.fields.data || "").split(",");
    if (logged.entry.kind !== "training-use" || logged.entry.fields.license !== entry.license_id ||
        !data.includes(entry.release_id) || logged.entry.fields.run !== use.run_id) {
      throw new Error(`the logged use of run ${use.run_id} does not match`);
    }
  }
}

// --- Merkle sum trees (my earnings) ----------------------------------------------------------

function u64(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

const U64_MAX = (1n << 64n) - 1n;

async function sumParent(left, right) {
  const records = left.records + right.records;
  const amount = left.amount + right.amount;
  if (records > U64_MAX || amount > U64_MAX) throw new Error("the sums overflow");
  const hash = await sha256(new Uint8Array([1]), left.hash, u64(left.records), u64(left.amount),
    right.hash, u64(right.records), u64(right.amount));
  return { hash, records, amount };
}

function largestPowerOfTwoBelow(n) {
  let power = 1;
  while (power * 2 < n) power *= 2;
  return power;
}

export async function verifyShare(line, me, salt, vkey) {
  const charge = line.charge;
  const commitment = hex(await sha256("datatrust share commitment v1\n", salt, me, charge.id));
  if (commitment !== line.commitment) throw new Error("the share is not committed to your key");
  let node = {
    hash: await leafHash(`datatrust share v1\n${commitment}\n${line.my_records}\n${line.my_amount}\n`),
    records: BigInt(line.my_records),
    amount: BigInt(line.my_amount),
  };
  const sides = [];
  let index = line.leaf_index;
  let size = charge.share_leaves;
  if (!(index < size)) throw new Error("leaf outside the tree");
  while (size > 1) {
    const split = largestPowerOfTwoBelow(size);
    if (index < split) {
      sides.push(true);
      size = split;
    } else {
      sides.push(false);
      index -= split;
      size -= split;
    }
  }
  sides.reverse();
  if (sides.length !== line.proof.length) throw new Error("the proof has the wrong length");
  for (let step = 0; step < sides.length; step++) {
    const wire = line.proof[step];
    const sibling = { hash: bytes(wire.hash), records: BigInt(wire.records), amount: BigInt(wire.amount) };
    node = sides[step] ? await sumParent(node, sibling) : await sumParent(sibling, node);
  }
  const root = line.root;
  if (!equal(node.hash, bytes(root.hash)) || node.records !== BigInt(root.records) || node.amount !== BigInt(root.amount)) {
    throw new Error("your share is not in the distribution's sum tree");
  }
  if (node.amount !== BigInt(charge.amount)) throw new Error("the shares do not add up to the charge");
  const logged = await verifyReceipt(line.receipt, vkey);
  const fields = logged.entry.fields;
  if (logged.entry.kind !== "charge" || fields.charge !== charge.id || fields.amount !== String(charge.amount) ||
      fields["share-root"] !== hex(node.hash) || fields["share-amount"] !== String(node.amount) ||
      fields["share-records"] !== String(node.records) || fields["share-leaves"] !== String(charge.share_leaves) ||
      fields.currency !== charge.currency) {
    throw new Error("the logged charge does not match what the trust reported");
  }
}
