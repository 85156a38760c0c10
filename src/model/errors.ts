/**
 * The one error type of the model adapter: every problem found in a model directory (damaged,
 * truncated, mismatched or invalid files) is a ModelFileError whose message starts with the path of
 * the file concerned, then says what is wrong with it.
 */
export class ModelFileError extends Error {
  /** Path of the file (or directory) the problem is in. */
  readonly file: string;
  /** What is wrong, without the file name. */
  readonly problem: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.name = 'ModelFileError';
    this.file = file;
    this.problem = problem;
  }
}
