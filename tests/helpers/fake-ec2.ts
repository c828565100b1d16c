/**
 * A small EC2-compatible endpoint on 127.0.0.1 for tests of the AWS adapter. It speaks the EC2
 * Query API actions Weft uses (RunInstances, DescribeInstances, TerminateInstances) in XML, as the
 * official SDK expects, and each "instance" is real: its decoded user data runs under bash as a
 * process group (so `weft worker` really starts); TerminateInstances kills that group.
 *
 * `shutdown` inside the user data is a stand-in on PATH that records the request, so the instance
 * ends as `terminated` with Client.InstanceInitiatedShutdown, as a real one would with
 * InstanceInitiatedShutdownBehavior=terminate. User data that names a real shutdown binary by path
 * is refused, so a test can never power off the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeInstance {
  id: string;
  imageId: string;
  instanceType: string;
  keyName?: string;
  subnetId?: string;
  securityGroupIds: string[];
  market?: string;
  iamInstanceProfile?: string;
  shutdownBehavior?: string;
  state: 'pending' | 'running' | 'shutting-down' | 'terminated';
  stateReason?: { code: string; message: string };
  tags: Record<string, string>;
  launchTime: string;
  userData: string;
  dir: string;
  process?: ChildProcess;
  exitCode?: number | null;
}

export interface FakeEc2 {
  /** Endpoint URL for the SDK (`endpoint` option). */
  url: string;
  instances: Map<string, FakeInstance>;
  /** Every request's Action, in order. */
  actions: string[];
  /** The instance's stdout+stderr so far. */
  output(id: string): string;
  stop(): Promise<void>;
}

const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const STATE_CODES = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48 } as const;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Values of a numbered list parameter: `prefix.1`, `prefix.2`, ... */
function list(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params.has(`${prefix}.${i}`); i++) out.push(params.get(`${prefix}.${i}`) ?? '');
  return out;
}

function instanceXml(i: FakeInstance): string {
  const tags = Object.entries(i.tags).map(([k, v]) => `<item><key>${esc(k)}</key><value>${esc(v)}</value></item>`).join('');
  const groups = i.securityGroupIds.map((g) => `<item><groupId>${esc(g)}</groupId><groupName>${esc(g)}</groupName></item>`).join('');
  return [
    '<item>',
    `<instanceId>${i.id}</instanceId>`,
    `<imageId>${esc(i.imageId)}</imageId>`,
    `<instanceState><code>${STATE_CODES[i.state]}</code><name>${i.state}</name></instanceState>`,
    `<privateDnsName>ip-127-0-0-1.ec2.internal</privateDnsName>`,
    i.keyName ? `<keyName>${esc(i.keyName)}</keyName>` : '',
    `<amiLaunchIndex>0</amiLaunchIndex>`,
    `<instanceType>${esc(i.instanceType)}</instanceType>`,
    `<launchTime>${i.launchTime}</launchTime>`,
    i.subnetId ? `<subnetId>${esc(i.subnetId)}</subnetId>` : '',
    `<privateIpAddress>127.0.0.1</privateIpAddress>`,
    `<groupSet>${groups}</groupSet>`,
    i.stateReason ? `<stateReason><code>${esc(i.stateReason.code)}</code><message>${esc(i.stateReason.message)}</message></stateReason>` : '',
    i.market === 'spot' ? '<instanceLifecycle>spot</instanceLifecycle>' : '',
    `<tagSet>${tags}</tagSet>`,
    '</item>',
  ].join('');
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${randomBytes(8).toString('hex')}</RequestID></Response>`;
}

class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Start the endpoint. `env` is added to every instance's environment (e.g. PATH to node). */
export async function startFakeEc2(options: { env?: Record<string, string> } = {}): Promise<FakeEc2> {
  const root = mkdtempSync(join(tmpdir(), 'weft-fake-ec2-'));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'shutdown'), '#!/bin/sh\n: > "$WEFT_FAKE_EC2_INSTANCE_DIR/shutdown-requested"\n');
  chmodSync(join(bin, 'shutdown'), 0o755);
  const instances = new Map<string, FakeInstance>();
  const actions: string[] = [];

  const launch = (inst: FakeInstance): void => {
    const script = join(inst.dir, 'user-data');
    writeFileSync(script, inst.userData, { mode: 0o700 });
    const out = openSync(join(inst.dir, 'output.log'), 'a');
    const child = spawn('/bin/bash', [script], {
      cwd: inst.dir,
      detached: true, // its own process group, so terminate reaches the worker too
      stdio: ['ignore', out, out],
      env: { ...process.env, ...options.env, PATH: `${bin}:${options.env?.['PATH'] ?? process.env['PATH'] ?? '/usr/bin:/bin'}`, WEFT_FAKE_EC2_INSTANCE_DIR: inst.dir, WEFT_FAKE_EC2_INSTANCE_ID: inst.id },
    });
    closeSync(out);
    inst.process = child;
    inst.state = 'running';
    child.once('exit', (code) => {
      inst.exitCode = code;
      if (inst.state === 'running' && existsSync(join(inst.dir, 'shutdown-requested'))) {
        inst.state = 'terminated';
        inst.stateReason = { code: 'Client.InstanceInitiatedShutdown', message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown' };
      }
      // Without a shutdown the "instance" stays running with nothing on it, like an idle real one.
    });
  };

  const terminate = async (inst: FakeInstance): Promise<string> => {
    const previous = inst.state;
    if (inst.state === 'terminated') return previous;
    inst.state = 'shutting-down';
    inst.stateReason = { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' };
    const child = inst.process;
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 5000);
      void exited.then(() => {
        clearTimeout(timer);
        inst.state = 'terminated';
      });
    } else {
      inst.state = 'terminated';
    }
    return previous;
  };

  const handle = async (params: URLSearchParams): Promise<string> => {
    const action = params.get('Action') ?? '';
    actions.push(action);
    switch (action) {
      case 'RunInstances': {
        const min = Number(params.get('MinCount') ?? '1');
        const max = Number(params.get('MaxCount') ?? '1');
        if (!params.get('ImageId')) throw new Ec2Error('MissingParameter', 'The request must contain the parameter ImageId');
        if (!(min >= 1 && max >= min)) throw new Ec2Error('InvalidParameterValue', 'MinCount and MaxCount are not valid');
        const userData = Buffer.from(params.get('UserData') ?? '', 'base64').toString('utf8');
        if (/\/(?:usr\/)?s?bin\/(?:shutdown|poweroff|reboot|halt)\b/.test(userData)) {
          throw new Ec2Error('InvalidParameterValue', 'fake-ec2 refuses user data that names a real shutdown binary by path');
        }
        const tags: Record<string, string> = {};
        for (let s = 1; params.has(`TagSpecification.${s}.ResourceType`); s++) {
          if (params.get(`TagSpecification.${s}.ResourceType`) !== 'instance') continue;
          for (let t = 1; params.has(`TagSpecification.${s}.Tag.${t}.Key`); t++) {
            tags[params.get(`TagSpecification.${s}.Tag.${t}.Key`) ?? ''] = params.get(`TagSpecification.${s}.Tag.${t}.Value`) ?? '';
          }
        }
        const created: FakeInstance[] = [];
        for (let n = 0; n < max; n++) {
          const id = `i-${randomBytes(8).toString('hex')}`;
          const dir = join(root, id);
          mkdirSync(dir);
          const inst: FakeInstance = {
            id,
            imageId: params.get('ImageId') ?? '',
            instanceType: params.get('InstanceType') ?? 'm5.large',
            keyName: params.get('KeyName') ?? undefined,
            subnetId: params.get('SubnetId') ?? undefined,
            securityGroupIds: list(params, 'SecurityGroupId'),
            market: params.get('InstanceMarketOptions.MarketType') ?? undefined,
            iamInstanceProfile: params.get('IamInstanceProfile.Name') ?? params.get('IamInstanceProfile.Arn') ?? undefined,
            shutdownBehavior: params.get('InstanceInitiatedShutdownBehavior') ?? undefined,
            state: 'pending',
            tags,
            launchTime: new Date().toISOString(),
            userData,
            dir,
          };
          instances.set(id, inst);
          created.push(inst);
        }
        const xml = created.map(instanceXml).join('');
        for (const inst of created) launch(inst);
        return `<RunInstancesResponse xmlns="${XMLNS}"><requestId>${randomBytes(8).toString('hex')}</requestId><reservationId>r-${randomBytes(8).toString('hex')}</reservationId><ownerId>000000000000</ownerId><groupSet/><instancesSet>${xml}</instancesSet></RunInstancesResponse>`;
      }
      case 'DescribeInstances': {
        const ids = list(params, 'InstanceId');
        for (const id of ids) if (!instances.has(id)) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
        let selected = ids.length > 0 ? ids.map((id) => instances.get(id) as FakeInstance) : [...instances.values()];
        for (let f = 1; params.has(`Filter.${f}.Name`); f++) {
          const name = params.get(`Filter.${f}.Name`) ?? '';
          const values = list(params, `Filter.${f}.Value`);
          selected = selected.filter((i) => {
            if (name.startsWith('tag:')) return values.includes(i.tags[name.slice(4)] ?? '\u0000');
            if (name === 'instance-state-name') return values.includes(i.state);
            if (name === 'instance-id') return values.includes(i.id);
            throw new Ec2Error('InvalidParameterValue', `fake-ec2 does not support the filter ${name}`);
          });
        }
        const reservations = selected.map((i) => `<item><reservationId>r-${i.id.slice(2)}</reservationId><ownerId>000000000000</ownerId><groupSet/><instancesSet>${instanceXml(i)}</instancesSet></item>`).join('');
        return `<DescribeInstancesResponse xmlns="${XMLNS}"><requestId>${randomBytes(8).toString('hex')}</requestId><reservationSet>${reservations}</reservationSet></DescribeInstancesResponse>`;
      }
      case 'TerminateInstances': {
        const ids = list(params, 'InstanceId');
        for (const id of ids) if (!instances.has(id)) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
        const items: string[] = [];
        for (const id of ids) {
          const inst = instances.get(id) as FakeInstance;
          const previous = await terminate(inst);
          items.push(
            `<item><instanceId>${id}</instanceId><currentState><code>${STATE_CODES[inst.state]}</code><name>${inst.state}</name></currentState><previousState><code>${STATE_CODES[previous as keyof typeof STATE_CODES]}</code><name>${previous}</name></previousState></item>`,
          );
        }
        return `<TerminateInstancesResponse xmlns="${XMLNS}"><requestId>${randomBytes(8).toString('hex')}</requestId><instancesSet>${items.join('')}</instancesSet></TerminateInstancesResponse>`;
      }
      default:
        throw new Ec2Error('InvalidAction', `fake-ec2 does not implement ${action || 'an empty Action'}`);
    }
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const params = new URLSearchParams(req.method === 'GET' ? (req.url ?? '').split('?')[1] ?? '' : body);
      handle(params).then(
        (xml) => {
          res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
          res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
        },
        (err: unknown) => {
          const e = err instanceof Ec2Error ? err : new Ec2Error('InternalError', (err as Error).message);
          res.writeHead(e.code === 'InternalError' ? 500 : 400, { 'content-type': 'text/xml;charset=UTF-8' });
          res.end(errorXml(e.code, e.message));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;

  return {
    url: `http://127.0.0.1:${port}`,
    instances,
    actions,
    output: (id) => {
      const p = join(instances.get(id)?.dir ?? '/nonexistent', 'output.log');
      return existsSync(p) ? readFileSync(p, 'utf8') : '';
    },
    async stop() {
      await Promise.all([...instances.values()].map(async (i) => {
        await terminate(i);
        const child = i.process;
        if (child && child.exitCode === null && child.signalCode === null) await new Promise<void>((r) => child.once('exit', () => r()));
      }));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
