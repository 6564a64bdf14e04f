// A SPDY/3.1 stream client for the agent's tests, built on npm's spdy-transport
// (the protocol engine of the `spdy` package): it does the HTTP upgrade the way
// kubectl does, then opens streams as kubectl's remotecommand/portforward do.
//   node spdy_client.js URL PROTOCOLS SPEC_JSON
// SPEC: {"mode":"exec", "stdin":"...", "tty":bool, "stderr":bool,
//        "resize":[{"Width":..,"Height":..}], "waitFor":"text", "keepStdin":bool,
//        "exitAfter":"text"}  (exec and attach; exitAfter: leave once stdout has it)
//        "steps":[{"send":"..."}|{"resize":{..}}|{"waitFor":"..."}|{"sleepMs":N}|
//                 {"closeStdin":true}|{"leave":true}]  (a session typed step by
//        step: waitFor holds the next steps until stdout has the text; leave detaches)
//    or {"mode":"portforward", "port":N, "request":"...", "requestID":"0"}
// Prints one JSON line: {"http":..., "stdout":..., "stderr":..., "error":..., "data":...}.
'use strict'
const net = require('net')
const transport = require('spdy-transport')

const [url, protocols, specJson] = process.argv.slice(2)
const spec = JSON.parse(specJson)
const u = new URL(url)
const result = { http: '', stdout: '', stderr: '', error: '', data: '' }
let printed = false
function done () {
  if (printed) return
  printed = true
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}
setTimeout(() => { result.timeout = true; done() }, spec.timeoutMs || 20000)

const sock = net.connect(+u.port, u.hostname, () => {
  let req = `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
    'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n'
  for (const p of protocols.split(',').filter(Boolean)) req += `X-Stream-Protocol-Version: ${p}\r\n`
  sock.write(req + '\r\n')
})
let head = Buffer.alloc(0)
function onHead (d) {
  head = Buffer.concat([head, d])
  const i = head.indexOf('\r\n\r\n')
  if (i < 0) return
  sock.removeListener('data', onHead)
  sock.pause()
  result.http = head.slice(0, i).toString()
  const rest = head.slice(i + 4)
  if (!result.http.startsWith('HTTP/1.1 101')) {
    result.body = rest.toString()
    return done()
  }
  if (rest.length) sock.unshift(rest)
  start()
}
sock.on('data', onHead)
sock.on('error', (e) => { result.socketError = String(e); done() })
sock.on('close', () => setTimeout(done, 50))

function open (conn, headers) {
  return conn.request({ method: 'POST', path: '/', host: u.host, headers, readable: true })
}

function start () {
  const conn = transport.connection.create(sock, { protocol: 'spdy', isServer: false })
  conn.start(3.1)
  conn.on('error', (e) => { result.spdyError = String(e) })
  if (spec.mode === 'portforward') return portforward(conn)
  const error = open(conn, { streamtype: 'error' })
  error.on('data', (d) => { result.error += d.toString() })
  error.on('end', () => setTimeout(done, 100))
  let stdin = null
  if (spec.stdin !== undefined) stdin = open(conn, { streamtype: 'stdin' })
  const stdout = open(conn, { streamtype: 'stdout' })
  const feed = () => {
    if (!stdin) return
    stdin.write(spec.stdin)
    if (!spec.keepStdin) stdin.end()
  }
  let fed = !spec.waitFor
  let resize = null
  let step = 0
  let stepping = false
  const next = () => {
    if (!stepping) return
    while (step < spec.steps.length) {
      const s = spec.steps[step]
      if (s.waitFor !== undefined) {
        if (!result.stdout.includes(s.waitFor)) return
        step++
        continue
      }
      step++
      if (s.send !== undefined && stdin) stdin.write(s.send)
      if (s.resize && resize) resize.write(JSON.stringify(s.resize))
      if (s.closeStdin && stdin) stdin.end()
      if (s.leave) { result.left = true; return done() }
      if (s.sleepMs) { stepping = false; setTimeout(() => { stepping = true; next() }, s.sleepMs); return }
    }
  }
  stdout.on('data', (d) => {
    result.stdout += d.toString()
    if (spec.steps) next()
    if (!fed && result.stdout.includes(spec.waitFor)) { fed = true; feed() }
    if (spec.exitAfter && result.stdout.includes(spec.exitAfter)) { result.left = true; done() }
  })
  if (spec.stderr) {
    const stderr = open(conn, { streamtype: 'stderr' })
    stderr.on('data', (d) => { result.stderr += d.toString() })
  }
  if (spec.tty) {
    resize = open(conn, { streamtype: 'resize' })
    for (const s of spec.resize || []) resize.write(JSON.stringify(s))
  }
  if (spec.steps) {
    fed = true
    stdout.once('response', () => setTimeout(() => { stepping = true; next() }, 200))
    return
  }
  // Feed stdin once the server has answered the streams (kubectl starts
  // copying after its streams are created, too).
  if (fed) stdout.once('response', () => setTimeout(feed, 200))
}

function portforward (conn) {
  const id = spec.requestID || '0'
  const error = open(conn, { streamtype: 'error', port: String(spec.port), requestid: id })
  error.on('data', (d) => { result.error += d.toString() })
  const data = open(conn, { streamtype: 'data', port: String(spec.port), requestid: id })
  data.on('data', (d) => { result.data += d.toString() })
  data.on('end', () => setTimeout(done, 100))
  error.on('end', () => { if (result.error) setTimeout(done, 100) })
  data.write(spec.request)
}
