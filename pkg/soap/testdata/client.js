// Calls authenticate(...) with the npm soap 1.13.0 client, which reads
// the WSDL from URL?wsdl. Usage: node client.js URL JSON-ARGS
// Prints {"result": ...} or {"fault": ...}. SOAP_USER and SOAP_PASS, when
// set, are sent as HTTP basic authentication.
const soap = require('soap');
const [, , url, json] = process.argv;
(async () => {
  const client = await soap.createClientAsync(url + '?wsdl');
  if (process.env.SOAP_USER) {
    client.setSecurity(new soap.BasicAuthSecurity(process.env.SOAP_USER, process.env.SOAP_PASS || ''));
  }
  try {
    const [result] = await client.authenticateAsync(JSON.parse(json));
    process.stdout.write(JSON.stringify({ result, request: client.lastRequest }));
  } catch (e) {
    const f = e.root && e.root.Envelope && e.root.Envelope.Body && e.root.Envelope.Body.Fault;
    process.stdout.write(JSON.stringify({ fault: f || String(e) }));
  }
})().catch((e) => { process.stderr.write(String(e)); process.exit(1); });
