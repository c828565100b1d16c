/**
 * WAL checkpoints off the server's thread. With SQLite's automatic checkpoint, the COMMIT that
 * takes the WAL past 1,000 pages copies them into the database file and fsyncs it, on the one
 * thread that serves every request: a latency spike for every request queued behind it, and CPU
 * on the hot path. Instead the main connection runs with wal_autocheckpoint=0 and a worker thread
 * with its own connection to the same file runs PASSIVE checkpoints (they never block the writer
 * or readers) at most every INTERVAL_MS while commits come in, and a TRUNCATE when no commit came
 * for IDLE_MS (it gives the disk space back; it needs the writer lock, so it is only tried when
 * idle, without waiting: the main thread never waits on it for long).
 *
 * What bounds the WAL: it starts again from its beginning at the first write transaction that
 * begins after a checkpoint copied all of it. Under a steady stream of commits that moment may
 * never come (a commit lands while each checkpoint runs). So once the WAL has passed HARD_FRAMES
 * the thread checkpoints without pause until a round copies at most SMALL_FRAMES, then hands over:
 * the main thread, right after its next COMMIT (no write open), copies the few frames left itself
 * and the write after that starts the WAL again. If readers of another connection hold old
 * snapshots, no checkpoint can finish the copy (as with the automatic checkpoint), and the thread
 * goes on at its normal pace.
 *
 * The last bound, for a disk slower than the writes (the thread's rounds never converge) or a stuck
 * thread: when the WAL passes MAX_WAL_BYTES (by the thread's last count, or by the size of the file
 * for the first time), the main thread copies the whole WAL itself after a COMMIT (the thread
 * pauses for it), as SQLite's automatic checkpoint would.
 *
 * Durability does not change: a commit is in the WAL before it is answered, checkpoints only copy
 * committed pages, and SQLite recovers the WAL after a crash as before. If the thread dies, the
 * main connection goes back to SQLite's automatic checkpoint.
 *
 * The thread shares an Int32Array with the main thread (no messages, nothing on the hot path but
 * an atomic add and a notify per COMMIT). Its code is a string (an eval worker) so it runs the
 * same from dist/ and from the TypeScript sources under the test runner.
 */
import type Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Slots of the shared Int32Array. */
const COMMITS = 0;
const STOP = 1;
/** WAL frames at the thread's last checkpoint (-1: unknown). */
const LOG = 2;
const CHECKPOINTS = 3;
const TRUNCATES = 4;
/** 1 while the thread waits for the main thread to finish the copy (see HARD_FRAMES). */
const HANDOFF = 5;
/** 1 while the main thread wants to checkpoint itself (MAX_WAL_BYTES): the thread starts no round. */
const MAIN_WANTS = 6;
const SLOTS = 7;

/**
 * At most one checkpoint per this many ms while commits come in. Pages written again and again
 * (table and index tails, hot rows) are copied once per round, so a longer pace copies less: in
 * process, 8,000 lifecycles, 50 ms cost 0.015 ms of CPU per lifecycle more than SQLite's automatic
 * checkpoint every 1,000 pages, 200 ms the same as it.
 */
const INTERVAL_MS = 200;
/** No commit for this long: truncate the WAL. */
const IDLE_MS = 1_000;
/**
 * WAL frames (4 KiB pages) past which the main thread finishes a copy itself, so the WAL starts
 * again: 128 MiB. Each time costs one write ~2 fsyncs and SMALL_FRAMES copied (5-25 ms here).
 */
const HARD_FRAMES = 32_768;
/** WAL file size past which the main thread copies the whole WAL itself. */
const MAX_WAL_BYTES = 512 * 1024 * 1024;
/** A WAL frame: a 4 KiB page and its 24-byte header. */
const WAL_FRAME_BYTES = 4096 + 24;
/** The main thread looks at the WAL file's size after every this many commits (a stat call). */
const SIZE_CHECK_EVERY = 16;
/** The thread hands over once a round copied at most this many frames. */
const SMALL_FRAMES = 256;
/** How long the thread waits for the main thread to take a hand-over (it needs a commit). */
const HANDOFF_MS = 100;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const ctl = new Int32Array(workerData.control);
const { intervalMs, idleMs, hardFrames, smallFrames, handoffMs } = workerData.tuning;
const [COMMITS, STOP, LOG, CHECKPOINTS, TRUNCATES, HANDOFF, MAIN_WANTS] = [${COMMITS}, ${STOP}, ${LOG}, ${CHECKPOINTS}, ${TRUNCATES}, ${HANDOFF}, ${MAIN_WANTS}];
const db = new Database(workerData.path, { fileMustExist: true });
// Never wait for a lock: a checkpoint that finds the file busy is tried again later.
db.pragma('busy_timeout = 0');
db.pragma('synchronous = NORMAL');
const passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const truncate = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)');
let seen = -1;
let walHasFrames = true;
let last = 0;
let prevLog = 0;
let prevCopied = 0;
const stopped = () => Atomics.load(ctl, STOP) !== 0;
try {
  while (!stopped()) {
    const now = Atomics.load(ctl, COMMITS);
    if (now === seen) {
      if (Atomics.wait(ctl, COMMITS, now, idleMs) === 'timed-out' && walHasFrames && !stopped()) {
        const r = truncate.get();
        if (r.busy === 0) {
          walHasFrames = false;
          Atomics.store(ctl, LOG, 0);
          Atomics.add(ctl, TRUNCATES, 1);
        }
      }
      continue;
    }
    const wait = last + intervalMs - Date.now();
    if (wait > 0) Atomics.wait(ctl, STOP, 0, wait);
    // The main thread wants the next turn (its checkpoint found this thread in a round); it takes
    // it at its next commit. When no commit comes for idleMs, writes have stopped and nobody will:
    // take the turn back, or the WAL would never be copied or truncated again.
    let quietMs = 0;
    while (Atomics.load(ctl, MAIN_WANTS) === 1 && !stopped()) {
      const before = Atomics.load(ctl, COMMITS);
      const timedOut = Atomics.wait(ctl, MAIN_WANTS, 1, 100) === 'timed-out';
      quietMs = timedOut && Atomics.load(ctl, COMMITS) === before ? quietMs + 100 : 0;
      if (quietMs >= idleMs) {
        Atomics.compareExchange(ctl, MAIN_WANTS, 1, 0);
        break;
      }
    }
    if (stopped()) break;
    seen = Atomics.load(ctl, COMMITS);
    const r = passive.get();
    last = Date.now();
    walHasFrames = true;
    Atomics.add(ctl, CHECKPOINTS, 1);
    if (r.busy !== 0 || r.log < 0) continue;
    Atomics.store(ctl, LOG, r.log);
    // Frames this round copied (the WAL may have started again since the last one).
    const copied = r.log >= prevLog ? r.checkpointed - prevCopied : r.checkpointed;
    prevLog = r.log;
    prevCopied = r.checkpointed;
    if (r.log >= hardFrames && r.checkpointed === r.log) {
      if (copied > smallFrames) {
        last = 0; // the next round at once: it copies what came in during this one
      } else {
        Atomics.store(ctl, HANDOFF, 1);
        Atomics.wait(ctl, HANDOFF, 1, handoffMs);
        Atomics.store(ctl, HANDOFF, 0);
      }
    }
  }
} finally {
  db.close();
}
`;

/** The thread's pace and bounds (defaults above; tests make them small). */
export interface CheckpointTuning {
  intervalMs: number;
  idleMs: number;
  hardFrames: number;
  smallFrames: number;
  handoffMs: number;
  maxWalBytes: number;
}

const DEFAULT_TUNING: CheckpointTuning = {
  intervalMs: INTERVAL_MS,
  idleMs: IDLE_MS,
  hardFrames: HARD_FRAMES,
  smallFrames: SMALL_FRAMES,
  handoffMs: HANDOFF_MS,
  maxWalBytes: MAX_WAL_BYTES,
};

export interface CheckpointStats {
  /** PASSIVE checkpoints the thread ran. */
  checkpoints: number;
  /** TRUNCATE checkpoints the thread ran when idle. */
  truncates: number;
  /** Hand-overs: the main thread copied the last few frames so the WAL could start again. */
  mainCheckpoints: number;
  /** Whole copies the main thread made because the WAL file had passed its largest size. */
  fullMainCheckpoints: number;
  /** WAL frames at the thread's last checkpoint. */
  walFrames: number;
  /** False once the thread has died (the main connection checkpoints on its own then). */
  running: boolean;
}

export class WalCheckpointer {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private running = true;
  private mainCheckpoints = 0;
  private fullMainCheckpoints = 0;
  private readonly walPath: string;
  private readonly maxWalBytes: number;
  /** WAL file size at which the main thread next copies the whole WAL itself. */
  private nextFullAt: number;
  private commits = 0;

  /** `db`: the main connection, already in WAL mode; it stops checkpointing on its own. */
  constructor(
    private readonly db: Database.Database,
    path: string,
    tuning: Partial<CheckpointTuning> = {},
  ) {
    this.ctl[LOG] = -1;
    this.walPath = `${path}-wal`;
    this.maxWalBytes = tuning.maxWalBytes ?? MAX_WAL_BYTES;
    this.nextFullAt = this.maxWalBytes;
    db.pragma('wal_autocheckpoint = 0');
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path, control: this.ctl.buffer, tuning: { ...DEFAULT_TUNING, ...tuning } } });
    // The thread must not keep a process alive that forgot to close its store.
    this.worker.unref();
    this.exited = new Promise<void>((resolve) => {
      this.worker.once('exit', () => {
        if (this.running) this.fallBack();
        resolve();
      });
    });
    this.worker.on('error', () => this.fallBack());
  }

  /** After each COMMIT of the main connection (a write of its own just ended). */
  afterCommit(walCheckpoint: () => { busy: number; log: number; checkpointed: number }): void {
    Atomics.add(this.ctl, COMMITS, 1);
    Atomics.notify(this.ctl, COMMITS);
    if (Atomics.load(this.ctl, HANDOFF) === 1) {
      // The thread copied all but a few frames and waits: copy the rest, so the next write restarts the WAL.
      const r = walCheckpoint();
      this.mainCheckpoints++;
      if (r.busy === 0) Atomics.store(this.ctl, LOG, r.checkpointed === r.log ? 0 : r.log);
      Atomics.store(this.ctl, HANDOFF, 0);
      Atomics.notify(this.ctl, HANDOFF);
    }
    if (++this.commits % SIZE_CHECK_EVERY === 0 || Atomics.load(this.ctl, MAIN_WANTS) === 1) this.boundWal(walCheckpoint);
  }

  /**
   * The last bound (MAX_WAL_BYTES). The thread's count of frames is as old as its last round; the
   * file's size holds without the thread, but once the WAL has started again it is the largest the
   * WAL ever was, so past the bound it only counts when it grows (by a quarter of the bound).
   */
  private boundWal(walCheckpoint: () => { busy: number; log: number; checkpointed: number }): void {
    let size: number;
    try {
      size = statSync(this.walPath).size;
    } catch {
      return; // no WAL file (yet)
    }
    if (size < this.maxWalBytes) this.nextFullAt = this.maxWalBytes;
    const frames = Atomics.load(this.ctl, LOG);
    if (size < this.nextFullAt && frames * WAL_FRAME_BYTES < this.maxWalBytes && Atomics.load(this.ctl, MAIN_WANTS) === 0) return;
    Atomics.store(this.ctl, MAIN_WANTS, 1);
    const r = walCheckpoint();
    if (r.busy !== 0) return; // the thread is in a round; it starts no other, so the next commit gets its turn
    this.fullMainCheckpoints++;
    Atomics.store(this.ctl, LOG, r.checkpointed === r.log ? 0 : r.log);
    Atomics.store(this.ctl, MAIN_WANTS, 0);
    Atomics.notify(this.ctl, MAIN_WANTS);
    this.nextFullAt = Math.max(this.nextFullAt, size + this.maxWalBytes / 4);
  }

  stats(): CheckpointStats {
    return {
      checkpoints: Atomics.load(this.ctl, CHECKPOINTS),
      truncates: Atomics.load(this.ctl, TRUNCATES),
      mainCheckpoints: this.mainCheckpoints,
      fullMainCheckpoints: this.fullMainCheckpoints,
      walFrames: Atomics.load(this.ctl, LOG),
      running: this.running,
    };
  }

  /** Stop the thread and wait for it to close its connection (before the main one closes). */
  async stop(): Promise<void> {
    this.running = false;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, COMMITS);
    Atomics.notify(this.ctl, STOP);
    // Waiting on an unref'd thread would let the event loop run dry (and the process exit) first.
    this.worker.ref();
    await this.exited;
  }

  private fallBack(): void {
    if (!this.running) return;
    this.running = false;
    Atomics.store(this.ctl, MAIN_WANTS, 0);
    try {
      if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
    } catch {
      /* the connection is closing */
    }
  }
}
