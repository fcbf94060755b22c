interface Env {
  COUNTER: DurableObjectNamespace;
  GREETING: string;
}

interface CountReply {
  count: number;
}

/** Forwards /increment and /get to the host's SharedCounter and wraps the answer. */
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname !== "/increment" && pathname !== "/get") {
      return Response.json({ error: `no route ${pathname}; use /increment or /get` }, { status: 404 });
    }
    const stub = env.COUNTER.get(env.COUNTER.idFromName("global-counter"));
    const reply = await stub.fetch(`https://shared-counter${pathname}`);
    const body = (await reply.json()) as CountReply;
    return Response.json({ client: "counter-client", note: env.GREETING, count: body.count });
  },
} satisfies ExportedHandler<Env>;
