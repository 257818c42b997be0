// `wasi:http/*` in the unit tests: the HTTP plumbing runs only in components (see
// test/components); these stand-ins let the modules that import it load.
const unavailable = () => {
  throw new Error('wasi:http is not available in the unit tests');
};
export const handle = unavailable;
export class Fields {
  static fromList = unavailable;
}
export class OutgoingRequest {}
export class RequestOptions {}
export class IncomingBody {}
export class OutgoingBody {}
export class OutgoingResponse {}
export class ResponseOutparam {}
