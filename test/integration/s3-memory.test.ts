/**
 * Bodies stream to disk: uploading an object several times larger than the server's memory budget
 * leaves its peak resident memory where it was (a buffered 256 MiB body alone would add 256 MiB).
 * The 1 GiB figures are in docs/BENCHMARKS.md (`npm run bench -- s3-upload`).
 */
import { measureUploadMemory } from '../support/s3-upload-memory';

describe('Embedded S3 server memory', () => {
  it('stays flat through a 256 MiB single PUT and a 256 MiB multipart upload by the AWS CLI', async () => {
    const r = await measureUploadMemory(256);
    expect(r.singlePut.etagMatches).toBe(true);
    expect(r.singlePut.peakRssMiB - r.baselinePeakRssMiB).toBeLessThan(64);
    expect(r.multipartCli.peakRssMiB - r.baselinePeakRssMiB).toBeLessThan(64);
  }, 180_000);
});
