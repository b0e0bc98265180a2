import { GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { SqsQueue } from '../../../../shared/adapters/sqs-queue';

const sqs = mockClient(SQSClient);
const URL = 'https://sqs.us-east-1.amazonaws.com/123/embed';
const noSleep = async () => undefined;

describe('SqsQueue', () => {
  beforeEach(() => sqs.reset());

  describe('send', () => {
    it('sends in batches of at most 10 with the bodies JSON-serialised', async () => {
      sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
      await new SqsQueue(new SQSClient({}), URL).send(Array.from({ length: 25 }, (_, i) => ({ i })));
      const calls = sqs.commandCalls(SendMessageBatchCommand);
      expect(calls.map((c) => c.args[0].input.Entries!.length)).toEqual([10, 10, 5]);
      expect(calls[0]!.args[0].input.QueueUrl).toBe(URL);
      expect(calls[2]!.args[0].input.Entries![4]!.MessageBody).toBe('{"i":24}');
    });

    it('keeps each batch within 256 KiB in all and refuses a message over it', async () => {
      sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
      const q = new SqsQueue(new SQSClient({}), 'https://q');
      const body = 'x'.repeat(100 * 1024);
      await q.send([body, body, body, 'small']);
      const batches = sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries!.map((e) => e.MessageBody!.length));
      expect(batches).toEqual([
        [102400, 102400],
        [102400, 5],
      ]);
      for (const b of batches) expect(b.reduce((n, x) => n + x, 0)).toBeLessThanOrEqual(256 * 1024);
      await expect(q.send(['y'.repeat(256 * 1024 + 1)])).rejects.toThrow(/at most 262144/);
    });

    it('retries only the entries SQS reports as failed', async () => {
      sqs
        .on(SendMessageBatchCommand)
        .resolvesOnce({ Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false }] })
        .resolves({ Failed: [] });
      await new SqsQueue(new SQSClient({}), URL, { sleep: noSleep }).send(['a', 'b', 'c']);
      const calls = sqs.commandCalls(SendMessageBatchCommand);
      expect(calls).toHaveLength(2);
      expect(calls[1]!.args[0].input.Entries).toEqual([{ Id: '1', MessageBody: 'b' }]);
    });

    it('fails at once on a sender fault and after maxAttempts on repeated failures', async () => {
      sqs.on(SendMessageBatchCommand).resolves({ Failed: [{ Id: '0', Code: 'InvalidMessageContents', SenderFault: true }] });
      await expect(new SqsQueue(new SQSClient({}), URL, { sleep: noSleep }).send(['x'])).rejects.toThrow(/InvalidMessageContents/);
      sqs.reset();
      sqs.on(SendMessageBatchCommand).resolves({ Failed: [{ Id: '0', Code: 'ServiceUnavailable', SenderFault: false }] });
      await expect(new SqsQueue(new SQSClient({}), URL, { sleep: noSleep, maxAttempts: 3 }).send(['x'])).rejects.toThrow(/after 3 attempts/);
      expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(3);
    });
  });

  describe('depth', () => {
    it('reports visible (including delayed) and in-flight messages', async () => {
      sqs.on(GetQueueAttributesCommand).resolves({
        Attributes: { ApproximateNumberOfMessages: '7', ApproximateNumberOfMessagesDelayed: '2', ApproximateNumberOfMessagesNotVisible: '3' },
      });
      expect(await new SqsQueue(new SQSClient({}), URL).depth()).toEqual({ visible: 9, inFlight: 3 });
    });
  });
});
