/** Errors of the data layer that callers tell apart. */

/** settlePost on a slot that is settled already (by this process, or marked unknown by another). */
export class SlotAlreadySettledError extends Error {
  constructor(readonly slotId: number) {
    super(`post slot ${slotId} is already settled`);
    this.name = 'SlotAlreadySettledError';
  }
}

export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}
