import { DurableObject } from "cloudflare:workers";

interface Env {
  COUNTER: DurableObjectNamespace<SharedCounter>;
}

/** A count shared by every worker that binds this namespace. */
export class SharedCounter extends DurableObject<Env> {
  async fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    let count = (await this.ctx.storage.get<number>("count")) ?? 0;
    if (pathname === "/increment") {
      count += 1;
      await this.ctx.storage.put("count", count);
    } else if (pathname !== "/get") {
      return Response.json({ error: `no route ${pathname}; use /increment or /get` }, { status: 404 });
    }
    return Response.json({ count });
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const stub = env.COUNTER.get(env.COUNTER.idFromName("global-counter"));
    return stub.fetch(request);
  },
} satisfies ExportedHandler<Env>;
