// The unit of an image's layout, shared by the raw, split and E01 plans.

/** One file of an image: where its bytes sit in the image stream. */
export interface Segment {
  file: string;
  start: number;
  size: number;
}
