/**
 * What a long computation checks as it goes: throwIfAborted() throws to stop
 * it (an AbortSignal is one). Pipelines check between their stages, selective
 * search's grouping every GROUPING_CHECK_EVERY merges.
 */
export interface Cancellation {
  throwIfAborted(): void;
}
