import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/**
 * Job ids that prove their own issue. An id is 20 bytes, base64url:
 * 8 random bytes (63 random bits: see issue), the creation time (seconds since epoch, 4 bytes) and an
 * 8-byte HMAC-SHA256 tag over both and the owning tenant, keyed by a secret
 * this deployment keeps in Redis. Unguessable like a random id, and a missing
 * job's id still tells, with no per-job storage at all, whether it was issued
 * to this tenant and when: so the API can answer 410 for a job removed past
 * retention and 404 for an id never issued (or another tenant's).
 */
const RANDOM_BYTES = 8;
const TIME_BYTES = 4;
const TAG_BYTES = 8;
const ID_BYTES = RANDOM_BYTES + TIME_BYTES + TAG_BYTES;

export class JobIds {
  private constructor(private readonly secret: Buffer) {}

  /** Reads the deployment's id secret, creating it on first use (every API process then shares it). */
  static async load(redis: RedisClient, keys: OffloadKeys): Promise<JobIds> {
    await redis.set(keys.idSecret, randomBytes(32).toString('base64'), 'NX');
    const secret = await redis.get(keys.idSecret);
    if (!secret) throw new Error('The job id secret could not be read back from Redis');
    return new JobIds(Buffer.from(secret, 'base64'));
  }

  issue(tenant: string, now = Date.now()): string {
    const id = Buffer.alloc(ID_BYTES);
    randomBytes(RANDOM_BYTES).copy(id);
    // The first character then comes from A–Z and a–f: an id never starts with `-`, which
    // command lines (`offload wait <id>`) would read as an option.
    id[0] = (id[0] as number) & 0x7f;
    id.writeUInt32BE(Math.floor(now / 1000), RANDOM_BYTES);
    this.tag(id, tenant).copy(id, RANDOM_BYTES + TIME_BYTES);
    return id.toString('base64url');
  }

  /** When this id was issued to `tenant`, ms since epoch; null when it never was. */
  issuedAt(id: string, tenant: string): number | null {
    const bytes = Buffer.from(id, 'base64url');
    if (bytes.length !== ID_BYTES || bytes.toString('base64url') !== id) return null;
    const tag = bytes.subarray(RANDOM_BYTES + TIME_BYTES);
    if (!timingSafeEqual(tag, this.tag(bytes, tenant))) return null;
    return bytes.readUInt32BE(RANDOM_BYTES) * 1000;
  }

  private tag(id: Buffer, tenant: string): Buffer {
    return createHmac('sha256', this.secret)
      .update(id.subarray(0, RANDOM_BYTES + TIME_BYTES))
      .update(tenant)
      .digest()
      .subarray(0, TAG_BYTES);
  }
}
