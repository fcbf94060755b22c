import { DurableObject } from "cloudflare:workers";

interface Env {
  COUNTER: DurableObjectNamespace<Counter>;
}

type Step = "increment" | "decrement" | "get";

/** A count kept in Durable Object storage. */
export class Counter extends DurableObject<Env> {
  async change(step: Step): Promise<number> {
    const current = (await this.ctx.storage.get<number>("count")) ?? 0;
    const next = step === "increment" ? current + 1 : step === "decrement" ? current - 1 : current;
    if (next !== current) {
      await this.ctx.storage.put("count", next);
    }
    return next;
  }
}

function stepFor(pathname: string): Step {
  if (pathname === "/increment") return "increment";
  if (pathname === "/decrement") return "decrement";
  return "get";
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    const counter = env.COUNTER.get(env.COUNTER.idFromName("counter"));
    const count = await counter.change(stepFor(pathname));
    return Response.json({ count });
  },
} satisfies ExportedHandler<Env>;
