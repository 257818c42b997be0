// Module resolution hooks (see register.js): `plinth:plugin/<name>@…` → ./fakes/<name>.js,
// `wasi:http/…` → ./fakes/http.js.
const FAKES = new URL('./fakes/', import.meta.url);

export async function resolve(specifier, context, nextResolve) {
  const match = /^plinth:plugin\/([a-z-]+)@/.exec(specifier);
  if (match) {
    return { url: new URL(`${match[1]}.js`, FAKES).href, shortCircuit: true };
  }
  if (specifier.startsWith('wasi:http/')) {
    return { url: new URL('http.js', FAKES).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
