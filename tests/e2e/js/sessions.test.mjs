// Sessions through the official TypeScript client, over both of its transports:
// "fetch" (HTTP/1.1, unary appends and SSE reads) and "s2s" (HTTP/2 sessions).
//
// Run by tests/e2e/test_js_client.py against a real server; the endpoints come
// from S2_ACCOUNT_ENDPOINT / S2_BASIN_ENDPOINT and the basin from S2_TEST_BASIN.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { afterEach, before, describe, test } from "node:test";

import {
	AppendInput,
	AppendRecord,
	BatchTransform,
	Producer,
	RangeNotSatisfiableError,
	S2,
	S2Environment,
	SeqNumMismatchError,
} from "@s2-dev/streamstore";

const TRANSPORTS = ["fetch", "s2s"];
// zstd needs Node 22.15+ in this client; the Python client covers it.
const COMPRESSIONS = ["none", "gzip"];
const basinName = process.env.S2_TEST_BASIN;

function client(compression = "none") {
	return new S2({ ...S2Environment.parse(), compression });
}

// Streams hold pooled connections; each test's are closed after it.
const openStreams = [];

async function newStream(s2, prefix, transport) {
	const name = `${prefix}-${transport}-${randomUUID()}`;
	const basin = s2.basin(basinName);
	await basin.streams.create({ stream: name });
	const stream = basin.stream(name, { forceTransport: transport });
	openStreams.push(stream);
	return stream;
}

async function readAll(stream, count) {
	const batch = await stream.read({
		start: { from: { seqNum: 0 } },
		stop: { limits: { count } },
	});
	return batch.records.map((r) => r.body);
}

describe("the official TypeScript client", () => {
	let s2;

	before(() => {
		assert.ok(basinName, "S2_TEST_BASIN must name an existing basin");
		s2 = client();
	});

	afterEach(async () => {
		await Promise.all(openStreams.splice(0).map((stream) => stream.close()));
	});

	for (const transport of TRANSPORTS) {
		test(`append session pipelines batches and acknowledges them in order (${transport})`, async () => {
			const stream = await newStream(s2, "append", transport);
			const session = await stream.appendSession();
			const tickets = [];
			for (let i = 0; i < 50; i++) {
				const records = [0, 1].map((j) => AppendRecord.string({ body: `b${i}-r${j}` }));
				tickets.push(await session.submit(AppendInput.create(records)));
			}
			const acks = [];
			for (const ticket of tickets) acks.push(await ticket.ack());
			await session.close();

			assert.deepEqual(
				acks.map((a) => [a.start.seqNum, a.end.seqNum]),
				acks.map((_, i) => [2 * i, 2 * i + 2]),
			);
			for (let i = 1; i < acks.length; i++) {
				assert.ok(acks[i].end.timestamp.getTime() >= acks[i - 1].end.timestamp.getTime());
			}
			const tail = await stream.checkTail();
			assert.equal(tail.tail.seqNum, 100);
			const bodies = await readAll(stream, 100);
			assert.equal(bodies[0], "b0-r0");
			assert.equal(bodies[99], "b49-r1");
		});

		test(`a failed match_seq_num condition is reported and nothing is appended (${transport})`, async () => {
			const stream = await newStream(s2, "condition", transport);
			await stream.append(AppendInput.create([AppendRecord.string({ body: "first" })]));
			const session = await stream.appendSession();
			const ticket = await session.submit(
				AppendInput.create([AppendRecord.string({ body: "late" })], { matchSeqNum: 0 }),
			);
			await assert.rejects(ticket.ack(), (error) => {
				assert.ok(error instanceof SeqNumMismatchError, `got ${error}`);
				assert.equal(error.expectedSeqNum, 1);
				return true;
			});
			await session.close().catch(() => {});
			const tail = await stream.checkTail();
			assert.equal(tail.tail.seqNum, 1);
		});

		test(`producer batches single records and reports each one's position (${transport})`, async () => {
			const stream = await newStream(s2, "producer", transport);
			const producer = new Producer(
				new BatchTransform({ lingerDurationMillis: 5, maxBatchRecords: 100 }),
				await stream.appendSession(),
			);
			const tickets = [];
			for (let i = 0; i < 300; i++) {
				tickets.push(await producer.submit(AppendRecord.string({ body: `p${i}` })));
			}
			const positions = [];
			for (const ticket of tickets) positions.push((await ticket.ack()).seqNum());
			await producer.close();

			assert.deepEqual(positions, [...Array(300).keys()]);
			const bodies = await readAll(stream, 300);
			assert.deepEqual(bodies.slice(0, 3), ["p0", "p1", "p2"]);
			assert.equal(bodies.length, 300);
		});

		test(`read session catches up, then follows live appends (${transport})`, async () => {
			const stream = await newStream(s2, "follow", transport);
			await stream.append(
				AppendInput.create([0, 1, 2].map((i) => AppendRecord.string({ body: `old${i}` }))),
			);
			const session = await stream.readSession({ start: { from: { seqNum: 0 } } });
			const seen = [];
			const appender = (async () => {
				// Once the old records arrived, the session is following the tail.
				while (seen.length < 3) await new Promise((r) => setTimeout(r, 10));
				for (let i = 0; i < 3; i++) {
					await stream.append(AppendInput.create([AppendRecord.string({ body: `new${i}` })]));
				}
			})();
			for await (const record of session) {
				seen.push([record.seqNum, record.body]);
				if (seen.length === 6) break;
			}
			await appender;
			assert.deepEqual(seen, [
				[0, "old0"],
				[1, "old1"],
				[2, "old2"],
				[3, "new0"],
				[4, "new1"],
				[5, "new2"],
			]);
		});

		test(`read session stops at its limits and reports the tail (${transport})`, async () => {
			const stream = await newStream(s2, "limits", transport);
			await stream.append(
				AppendInput.create([...Array(10).keys()].map((i) => AppendRecord.string({ body: `r${i}` }))),
			);
			const session = await stream.readSession({
				start: { from: { seqNum: 2 } },
				stop: { limits: { count: 5 } },
			});
			const seqNums = [];
			for await (const record of session) seqNums.push(record.seqNum);
			assert.deepEqual(seqNums, [2, 3, 4, 5, 6]);
		});

		test(`reading past the tail is a range error carrying the tail (${transport})`, async () => {
			const stream = await newStream(s2, "range", transport);
			await stream.append(AppendInput.create([AppendRecord.string({ body: "only" })]));
			await assert.rejects(
				stream.read({ start: { from: { seqNum: 5 } }, stop: { waitSecs: 0 } }),
				(error) => {
					assert.ok(error instanceof RangeNotSatisfiableError, `got ${error}`);
					assert.equal(error.tail?.seqNum, 1);
					return true;
				},
			);
		});
	}

	for (const compression of COMPRESSIONS) {
		test(`s2s sessions with ${compression} compression move large batches intact`, async () => {
			const compressed = client(compression);
			try {
				const stream = await newStream(compressed, `compress-${compression}`, "s2s");
				const body = "0123456789abcdef".repeat(512); // 8 KiB, compressible
				const session = await stream.appendSession();
				const tickets = [];
				for (let i = 0; i < 20; i++) {
					const records = [0, 1, 2, 3].map((j) =>
						AppendRecord.string({ body: `${i}:${j}:${body}` }),
					);
					tickets.push(await session.submit(AppendInput.create(records)));
				}
				for (const ticket of tickets) await ticket.ack();
				await session.close();

				const reader = await stream.readSession({
					start: { from: { seqNum: 0 } },
					stop: { limits: { count: 80 } },
				});
				let n = 0;
				for await (const record of reader) {
					assert.equal(record.seqNum, n);
					assert.equal(record.body, `${Math.floor(n / 4)}:${n % 4}:${body}`);
					n++;
				}
				assert.equal(n, 80);
			} finally {
				await Promise.all(openStreams.splice(0).map((stream) => stream.close()));
			}
		});
	}
});
