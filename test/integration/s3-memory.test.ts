/**
 * Bodies stream to disk: a 256 MiB upload moves the server's peak resident memory by its working
 * buffers only (measured here: 30-64 MiB, the higher figures with ten concurrent CLI part uploads on
 * a busy machine, and no more at 1 GiB), never by the object (a buffered body alone adds 256 MiB;
 * the server before this test added 512). The 1 GiB figures are in docs/BENCHMARKS.md.
 */
import { measureUploadMemory } from '../support/s3-upload-memory';

describe('Embedded S3 server memory', () => {
  it('stays flat through a 256 MiB single PUT and a 256 MiB multipart upload by the AWS CLI', async () => {
    const r = await measureUploadMemory(256);
    expect(r.singlePut.etagMatches).toBe(true);
    expect(r.singlePut.peakRssMiB - r.baselinePeakRssMiB).toBeLessThan(96);
    expect(r.multipartCli.peakRssMiB - r.baselinePeakRssMiB).toBeLessThan(96);
  }, 180_000);
});
