// The reference's stack, for oneclick's benchmarks only: Express and @resonatehq/sdk with its
// embedded, in-memory runtime (`new Resonate()`), running the reference's one-click workflow
// and its three handlers (written here from shared/reference/: the example-nextjs-ecommerce-ts
// shape). Nothing is kept: a restart forgets every purchase. Mounted under /api/ so that the
// benchmark's load generator sends the same requests as to oneclick; no authentication (the
// reference has none: the Authorization header the load generator sends is ignored).
//
//   PORT=8000 CANCEL_WINDOW_MS=5000 node bench/peers/resonate/server.js
import "./node20.js";
import { EventEmitter } from "node:events";
import express from "express";
import { Resonate } from "@resonatehq/sdk";

const CANCEL_WINDOW_MS = Number(process.env.CANCEL_WINDOW_MS ?? 5000);
const bus = new EventEmitter();
bus.setMaxListeners(0); // one listener per purchase in its window
const stock = new Map([["bench-item-001", 1_000_000_000]]);
let nextOrderId = 1;

function waitForCancelOrTimeout(_ctx, key, windowMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      bus.removeAllListeners(`cancel:${key}`);
      resolve("confirmed");
    }, windowMs);
    bus.once(`cancel:${key}`, () => {
      clearTimeout(timer);
      resolve("cancelled");
    });
  });
}

function cancelledPurchase(_ctx, itemId) {
  return itemId;
}

function checkoutItem(_ctx, itemId) {
  const left = stock.get(itemId) ?? 0;
  if (left <= 0) {
    return null;
  }
  stock.set(itemId, left - 1);
  return nextOrderId++;
}

function* oneClickBuy(ctx, itemId, key) {
  const decision = yield* ctx.run(waitForCancelOrTimeout, key, CANCEL_WINDOW_MS);
  if (decision === "cancelled") {
    yield* ctx.run(cancelledPurchase, itemId);
    return { state: "PURCHASE_CANCELLED", itemId };
  }
  const orderId = yield* ctx.run(checkoutItem, itemId);
  return { state: "PURCHASE_CONFIRMED", itemId, orderId };
}

const resonate = new Resonate();
resonate.register(oneClickBuy);

const app = express();
app.use(express.json());

app.get("/healthz", (_req, res) => {
  res.json({ status: "ok" });
});

app.post("/api/buy/:key", async (req, res) => {
  const key = req.params.key;
  const itemId = req.body?.item_id ?? "widget-001";
  resonate.run(`checkout/${key}`, oneClickBuy, itemId, key).catch(console.error);
  res.status(202).json({ status: "pending", key });
});

app.post("/api/cancel/:key", (req, res) => {
  bus.emit(`cancel:${req.params.key}`);
  res.json({ status: "ok" });
});

app.get("/api/status/:key", async (req, res) => {
  try {
    const handle = await resonate.get(`checkout/${req.params.key}`);
    const done = await handle.done();
    if (!done) {
      res.json({ status: "pending" });
      return;
    }
    res.json({ status: "done", result: await handle.result() });
  } catch {
    res.status(404).json({ status: "not_found" });
  }
});

app.listen(Number(process.env.PORT ?? 8000), "127.0.0.1");
