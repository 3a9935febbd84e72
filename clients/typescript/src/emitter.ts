// A minimal typed event emitter (the same code in browsers and Node, no dependency).

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners: { [K in keyof Events]?: Set<Listener<Events[K]>> } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    const set = (this.listeners[name] ??= new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  protected emit<K extends keyof Events>(name: K, value: Events[K]): void {
    const set = this.listeners[name];
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(value);
      } catch (error) {
        // A listener's bug must not break the session's protocol handling.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
