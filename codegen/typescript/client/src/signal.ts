/** A listener set: `subscribe` returns the function that unsubscribes. */
export type Unsubscribe = () => void;

/** One kind of change that listeners can follow. */
export class Signal<T> {
  private readonly listeners = new Set<(value: T) => void>();

  /** Call `listener` on every emission until the returned function is called. */
  subscribe(listener: (value: T) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Call every listener with `value`; one listener's exception does not stop the others. */
  emit(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** Drop every listener. */
  clear(): void {
    this.listeners.clear();
  }
}
