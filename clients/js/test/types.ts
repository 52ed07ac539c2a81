// Type-checked by test/package.test.mjs (tsc --noEmit --strict): the
// README's example and every public name, as an application uses them.
import GoimClientDefault, { GoimClient, GoimError, Message, OP,
                            backoffDelay, decodePackets, encodePacket }
    from 'goim-client';
import type { ConnectInfo, DisconnectInfo, State } from 'goim-client';

declare const WebSocketImpl: new (url: string) => any;

const client = new GoimClient('wss://push.example.com/sub', {
    token: async () => (await fetch('/api/goim-token')).text(),
    WebSocket: WebSocketImpl,
    heartbeat: 30000,
    timeout: 10000,
    minReconnectDelay: 500,
    maxReconnectDelay: 20000,
});
const other: GoimClient = new GoimClientDefault(['ws://a/sub', 'ws://b/sub'],
    { token: { mid: 1, key: 'k', room_id: 'live://1', accepts: [1000] } });

client.on(1000, (m: Message) => {
    const s: string = m.text;
    const o = m.json<{ text: string }>();
    const bytes: Uint8Array = m.body;
    void s; void o.text; void bytes;
});
const off: () => void = client.on('state', (s: State, prev: State) => {
    void s; void prev;
});
off();
client.on('connect', (i: ConnectInfo) => { const r: boolean = i.reconnected; void r; });
client.on('disconnect', (d: DisconnectInfo) => { void d.delay; void d.error?.type; });
client.on('error', (e: GoimError) => {
    if (e.type === 'auth') {
        console.log(e.code, e.reason);
    }
});
client.on('online', (n: number) => void n);
client.on('room', (r: string | null) => void r);
client.on('message', (m: Message) => void m.op);
client.connect();

async function later(): Promise<void> {
    const room: string = await client.changeRoom('live://2');
    await client.watch([1001, 1002]);
    await client.unwatch(1001);
    const online: number = await client.ping();
    void room; void online;
    client.close();
}
void later; void other;

const p: Uint8Array = encodePacket(OP.HEARTBEAT, 1);
const ops: number[] = decodePackets(p).map((x) => x.op);
const d: number = backoffDelay(3, 500, 20000);
const st: 'disconnected' | 'connecting' | 'connected' = client.state;
void ops; void d; void st; void client.online; void client.info?.key;
