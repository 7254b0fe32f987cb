// A claude-code-router transformer for the benchmark (scripts/bench/ccr-config.json loads it
// through its documented `transformers: [{ "path": ... }]`): it copies the client's x-mock-*
// headers onto the request to the provider. ccr forwards no client header on a translated route
// (only its pass-through Anthropic transformer does), so without it the mock would never see the
// shaping headers (x-mock-deltas, x-mock-delta-bytes, x-mock-event-interval-ms) and would answer
// a short echo instead of the stamped stream sseload asks for. Its cost is part of ccr's figures.
module.exports = class {
  constructor() {
    this.name = "forward-mock-headers";
  }

  async transformRequestIn(body, provider, context) {
    const headers = {};
    for (const [name, value] of Object.entries(context.req.headers)) {
      if (name.startsWith("x-mock-")) headers[name] = value;
    }
    return { body, config: { headers } };
  }
};
